"""The vote-path benchmark: one command, one server configuration, every figure.

    make bench                      # or: .venv/bin/python -m loadtest.bench

For each worker count (1 and 2) it starts ``votesvc serve`` once and measures,
against that one server, with wrk (Debian's ``wrk``; Lua scripts in
``loadtest/wrk``):

- the ceiling: ``GET /healthz``, the bare endpoint of the same stack;
- ``POST /v1/votes`` at full load, every vote from a new phone (all ``201``);
- ``GET /v1/tally`` at full load;
- vote latency (p50/p99) at half of the measured vote peak, paced open-loop
  (the median p99 of three runs);
- server CPU-seconds per vote (``/proc/<pid>/stat`` of the server processes);
- verified votes (``Authorization: Bearer``, each voter token casting its day's
  votes) against unverified ones, in alternated runs, on a second server that
  runs the campaign's verified twin; with one worker, ``POST /v1/otp`` +
  ``POST /v1/otp/verify`` pairs per second, the codes going out through the
  webhook sender to a small gateway on loopback (``--no-verified`` skips these);
- with one worker, what Prometheus metrics cost a vote: three balanced pairs
  of vote runs (off, on, on, off, then on, off, off, on), each run a fresh
  server; the median of the pairs' differences in server CPU per vote
  (``--no-metrics-cost`` skips it).

Then Redis alone runs the project's own ``cast_vote.lua`` under
``redis-benchmark`` (Debian's ``redis-tools``), and a fresh Redis takes a day's
votes of 1,000,000 voters, cast through votesvc's own ``VoteCaster``, to weigh
the state a phone keeps for its day (stream entries are weighed apart), and
another takes 100,000 one-time codes sent through votesvc's own
``OneTimeCodes``, to weigh a pending code.

Pinning, on a machine with two or more CPUs: the one-worker server runs on the
first CPU, wrk and the flusher on the second; Redis is not pinned (it takes
what the others leave). Two workers may use every CPU. The benchmark has its
own campaign file (an IP limit loopback cannot hit, burst and daily limits that
unique phones never reach), its own data directory (deleted afterwards), its
own embedded Redis, and runs ``votesvc flush`` as its own process (the paced
run is repeated with the flusher paused, to show what its reads cost the vote
p99). Results are printed and written to ``BENCHMARKS.md`` (its own section
only).

Modules: ``processes`` (pinning, CPU time, stopping), ``wrk`` (one wrk run),
``server`` (the HTTP figures of one ``votesvc serve``), ``verified`` (the
verified server's votes), ``otp`` (the SMS code pairs and a pending code's
weight), ``metrics_cost`` (metrics off against on), ``redis_side`` (Redis
alone: redis-benchmark and memory), ``report`` (the markdown section).
"""
