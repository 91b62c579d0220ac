"""What counting votes for Prometheus costs the vote path: metrics off against on.

Issue 17 sets the bound: at most 3 µs of server CPU per vote, shown as the
median of three alternating off/on pairs. Each pair is balanced (off, on, on,
off, then on, off, off, on): each side is the mean of its two runs, so that a
drift of the machine, or a cost of coming second, falls on both sides alike.
Each run is a fresh one-worker ``votesvc serve`` (pinned, on the benchmark's
port, against the same Redis, campaign and flusher as the rest of the
benchmark): without ``VOTESVC_METRICS_PORT``, and with it set to a free
loopback port. Each takes a short warm-up and then a paced vote load
(``wrk/vote_paced.lua``, a new phone per vote, at half the one-worker vote
peak, as the latency figures): a fixed rate keeps the batch sizes alike on
both sides. Its server CPU-seconds over that run, read from ``/proc`` as
:mod:`loadtest.bench.server` reads them, are divided by its ``201`` replies.
A difference is on minus off within a pair.

A server with metrics on pays everything metrics add, not only the count in
the vote path: the once-a-second push into the shared counters and the gauges
sampled from Redis every few seconds. Once its vote run is over, one scrape of
its ``/metrics`` checks that ``votesvc_votes_total{code="accepted"}`` holds
every ``201`` its wrk runs saw.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from loadtest.bench.processes import (
    LOOPBACK,
    VENV_BIN,
    Pinning,
    cpu_seconds,
    descendants,
    free_port,
    stop,
    wait_http,
)
from loadtest.bench.wrk import Phones, wrk

PAIRS = 3  # as issue 17 asks
WARM_UP_SECONDS = 2
# The server pushes its vote counts into the shared counters once a second
# (votesvc/app.py): scrape only after a push that came after the last vote.
PUSH_LAG_SECONDS = 1.5
METRICS_ENV = ("VOTESVC_METRICS_PORT", "VOTESVC_METRICS_HOST")


@dataclass
class CostRun:
    """One fresh server's vote run, with metrics off or on."""

    metrics: bool
    rate: float = 0.0  # votes/s
    cpu_per_vote: float = 0.0  # server CPU-seconds per 201 of the measured run
    errors: int = 0  # of the warm-up and the measured run
    seen: int = 0  # 201s wrk saw from this server, warm-up included
    counted: int | None = None  # the accepted votes /metrics showed (on only; None: no answer)
    scrape_error: str = ""
    runs: int = 1  # runs merged into this one (see merged)

    @classmethod
    def merged(cls, runs: list[CostRun]) -> CostRun:
        """One side of a balanced pair: the mean rate and CPU per vote of its runs,
        their errors, 201s and scraped counts summed."""
        counts = [run.counted for run in runs]
        return cls(
            runs[0].metrics,
            rate=statistics.fmean(run.rate for run in runs),
            cpu_per_vote=statistics.fmean(run.cpu_per_vote for run in runs),
            errors=sum(run.errors for run in runs),
            seen=sum(run.seen for run in runs),
            counted=None if None in counts else sum(c for c in counts if c is not None),
            scrape_error="; ".join(run.scrape_error for run in runs if run.scrape_error),
            runs=sum(run.runs for run in runs),
        )


@dataclass
class MetricsCost:
    connections: int
    pairs: list[tuple[CostRun, CostRun]] = field(default_factory=list)  # (off, on)

    @property
    def differences(self) -> list[float]:
        """Server CPU-seconds per vote, on minus off, per pair."""
        return [on.cpu_per_vote - off.cpu_per_vote for off, on in self.pairs]

    @property
    def median(self) -> float:
        return statistics.median(self.differences) if self.pairs else 0.0

    @property
    def scrapes_agree(self) -> bool:
        """Each on-run's scrape counted every 201 its wrk runs saw, and at most the
        replies cut off when they stopped (one per connection per run) besides."""
        return all(
            on.counted is not None
            and on.seen <= on.counted <= on.seen + 2 * self.connections * on.runs
            for _, on in self.pairs
        )

    @property
    def errors(self) -> int:
        return sum(run.errors for pair in self.pairs for run in pair)


def server_env(env: dict[str, str], metrics_port: int | None) -> dict[str, str]:
    """``env`` with metrics off (``None``) or on at ``metrics_port``, on loopback."""
    # Whatever the shell exported, the listener binds votesvc's default host.
    plain = {name: value for name, value in env.items() if name not in METRICS_ENV}
    if metrics_port is None:
        return plain
    return {**plain, "VOTESVC_METRICS_PORT": str(metrics_port)}


def accepted_votes(exposition: str) -> int | None:
    """``votesvc_votes_total{code="accepted"}`` in a Prometheus text exposition."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "votesvc_votes_total" and sample.labels.get("code") == "accepted":
                return int(sample.value)
    return None


def measure_metrics_cost(
    opts: argparse.Namespace,
    env: dict[str, str],
    pinning: Pinning,
    phones: Phones,
    connections: int,
    rate: float,
) -> MetricsCost:
    """Three balanced pairs of one-worker runs at ``rate`` votes/s (four runs each:
    metrics off and on twice), each run a fresh server. A fixed rate keeps the
    batch sizes, and so the CPU per vote, alike on both sides: at full load a
    faster run batches more and hides the few microseconds this measures."""
    cost = MetricsCost(connections)
    print(
        f"  metrics cost: {PAIRS} pairs of 1-worker vote runs, off and on, "
        f"{rate:,.0f} votes/s paced, {connections} connections",
        flush=True,
    )
    for pair in range(PAIRS):
        # A balanced pair: off, on, on, off (then on, off, off, on). With one run a
        # side, the second run of a pair cost 10 to 20 µs more a vote whichever side
        # it was (three make bench runs of 2026-11-28), and that showed up as the
        # metrics' cost in the two pairs of three that ran off first.
        order = (False, True, True, False) if pair % 2 == 0 else (True, False, False, True)
        runs = [
            _run(opts, env, pinning, phones, connections, rate, metrics=metrics)
            for metrics in order
        ]
        off = CostRun.merged([run for run in runs if not run.metrics])
        on = CostRun.merged([run for run in runs if run.metrics])
        cost.pairs.append((off, on))
        counted = f"{on.counted:,}" if on.counted is not None else "no answer"
        if on.scrape_error:
            counted += f" ({on.scrape_error})"
        print(
            f"    off {off.cpu_per_vote * 1e6:.1f} µs/vote ({off.rate:,.0f} votes/s), "
            f"on {on.cpu_per_vote * 1e6:.1f} µs/vote ({on.rate:,.0f} votes/s): "
            f"{(on.cpu_per_vote - off.cpu_per_vote) * 1e6:+.1f} µs; "
            f"/metrics accepted {counted} of {on.seen:,} seen",
            flush=True,
        )
    print(f"    median difference {cost.median * 1e6:+.1f} µs of server CPU per vote", flush=True)
    return cost


def _run(
    opts: argparse.Namespace,
    env: dict[str, str],
    pinning: Pinning,
    phones: Phones,
    connections: int,
    rate: float,
    *,
    metrics: bool,
) -> CostRun:
    metrics_port = free_port() if metrics else None
    command = ["taskset", "-c", pinning.server, str(VENV_BIN / "votesvc"), "serve"]
    command += ["--port", str(opts.port), "--workers", "1"]
    server = subprocess.Popen(command, env=server_env(env, metrics_port), stdout=subprocess.DEVNULL)
    base = f"http://{LOOPBACK}:{opts.port}"
    url = base + "/v1/votes"
    figures = CostRun(metrics)
    load = pinning.load  # wrk's CPU
    try:
        wait_http(base + "/readyz")
        warm = wrk(url, "vote.lua", WARM_UP_SECONDS, connections, [phones.take(), "1"], cpus=load)
        pids = descendants(server.pid)
        before = cpu_seconds(pids)
        paced = [phones.take(), "1", str(round(rate))]
        run = wrk(url, "vote_paced.lua", opts.seconds, connections, paced, cpus=load)
        used = cpu_seconds(pids) - before
        accepted = run.requests - run.errors
        figures.rate = run.rate
        figures.cpu_per_vote = used / max(accepted, 1)
        figures.errors = warm.errors + run.errors
        figures.seen = warm.requests - warm.errors + accepted
        if metrics_port is not None:
            time.sleep(PUSH_LAG_SECONDS)
            scrape = f"http://{LOOPBACK}:{metrics_port}/metrics"
            try:
                with urllib.request.urlopen(scrape, timeout=5) as reply:
                    figures.counted = accepted_votes(reply.read().decode())
            except (urllib.error.URLError, OSError, ValueError) as exc:
                figures.scrape_error = str(exc)
    finally:
        stop(server)
    return figures
