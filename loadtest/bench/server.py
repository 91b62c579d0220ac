"""One ``votesvc serve`` under wrk: every HTTP figure of one worker count.

Each endpoint runs at its own peak, found by short probes: a vote waits on
Redis, so it takes more requests in flight than a ping to keep the server busy.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import time
from dataclasses import dataclass, field

import redis

from loadtest.bench.campaign import CAMPAIGN_ID
from loadtest.bench.processes import VENV_BIN, Pinning, cpu_seconds, descendants, stop, wait_http
from loadtest.bench.redis_side import SHARDS, tally_total
from loadtest.bench.verified import VerifiedBench, VerifiedFigures
from loadtest.bench.wrk import Phones, Run, median_run, wrk
from votesvc.keys import Keys


@dataclass
class ServerFigures:
    workers: int
    ping: float = 0.0
    starlette: float = 0.0  # a constant reply through Starlette's router and middleware
    votes: float = 0.0
    tally: float = 0.0
    ping_p99: float = 0.0
    tally_p99: float = 0.0
    paced_rate: float = 0.0
    paced_target: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    p99_paused_flusher: float | None = None  # the same paced load, flusher stopped
    p99_runs: list[float] = field(default_factory=list)  # each paced run's p99 (median above)
    p99_paused_runs: list[float] = field(default_factory=list)
    slow_commands: str = ""  # Redis commands over 2 ms during the paced run
    cpu_per_vote: float = 0.0
    server_busy: float = 0.0  # share of one CPU the server used during the vote runs
    other_cpu_per_vote: dict[str, float] = field(default_factory=dict)
    accepted: int = 0
    written: int = 0
    errors: int = 0
    runs: dict[str, list[float]] = field(default_factory=dict)
    probes: dict[str, dict[int, float]] = field(default_factory=dict)  # connections -> req/s
    connections: dict[str, int] = field(default_factory=dict)  # each endpoint's peak
    verified: VerifiedFigures | None = None  # votes with tokens, alternated with these


def slow_commands(client: redis.Redis) -> str:
    """The Redis commands that took over 2 ms since the last SLOWLOG RESET, by name."""
    found: dict[str, list[float]] = {}
    for entry in client.slowlog_get(128):
        words = entry["command"].split()
        name = words[0].decode() if words else "?"
        if name.upper() == "EVALSHA" and len(words) > 1:
            name = f"EVALSHA {words[1].decode()[:8]}"
        found.setdefault(name, []).append(entry["duration"] / 1000)
    client.config_set("slowlog-log-slower-than", 10000)
    return ", ".join(
        f"{name} x{len(ms)} (max {max(ms):.1f} ms)" for name, ms in sorted(found.items())
    )


def wait_flushed(client: redis.Redis, keys: Keys, timeout: float = 120) -> None:
    """Let the flusher catch up on what piled up while it was stopped (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipe = client.pipeline()
        for key in keys.streams():
            pipe.xlen(key)
        if sum(pipe.execute()) < 5000:
            return
        time.sleep(0.5)


def measure_server(
    workers: int,
    opts: argparse.Namespace,
    env: dict[str, str],
    pinning: Pinning,
    phones: Phones,
    client: redis.Redis,
    helpers: dict[str, int],
    verified: VerifiedBench | None = None,
) -> ServerFigures:
    cpus = pinning.server if workers == 1 else pinning.server_multi
    command = ["taskset", "-c", cpus, str(VENV_BIN / "votesvc"), "serve"]
    command += ["--port", str(opts.port), "--workers", str(workers)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{opts.port}"
    figures = ServerFigures(workers)
    keys = Keys(CAMPAIGN_ID, SHARDS)
    try:
        wait_http(base + "/readyz")
        wait_http(base + "/v1/tally")
        levels: list[int] = opts.connections
        d = opts.seconds
        print(f"  {workers} worker(s): warming up", flush=True)
        wrk(base + "/healthz", "report.lua", 2, levels[0], cpus=pinning.load)
        wrk(base + "/v1/votes", "vote.lua", 2, levels[0], [phones.take(), "1"], cpus=pinning.load)

        def peak(name: str, url: str, script: str, extra: bool = False) -> int:
            """The connection count at which the endpoint serves the most, by short probes."""
            if len(levels) == 1:
                return levels[0]
            rates: dict[int, float] = {}
            for connections in levels:
                args = [phones.take(), "1"] if extra else None
                run = wrk(url, script, opts.probe_seconds, connections, args, cpus=pinning.load)
                figures.errors += run.errors
                if extra:
                    figures.accepted += run.requests - run.errors
                rates[connections] = run.rate
            figures.probes[name] = rates
            return max(rates, key=rates.__getitem__)

        def series(
            name: str, url: str, script: str, extra: bool = False, connections: int = 0
        ) -> list[Run]:
            connections = connections or peak(name, url, script, extra)
            figures.connections[name] = connections
            runs = []
            for _ in range(opts.repeats):
                args = [phones.take(), "1"] if extra else None
                runs.append(wrk(url, script, d, connections, args, cpus=pinning.load))
            figures.runs[name] = [round(r.rate) for r in runs]
            figures.errors += sum(r.errors for r in runs)
            rates = figures.runs[name]
            print(f"    {name:6} req/s {rates} at {connections} connections", flush=True)
            return runs

        ping = median_run(series("ping", base + "/healthz", "report.lua"))
        tally = median_run(series("tally", base + "/v1/tally", "report.lua"))
        starlette = median_run(series("routed", base + "/v1/nominees", "report.lua"))
        figures.starlette = starlette.rate
        written_before = tally_total(client, keys)
        vote_connections = peak("votes", base + "/v1/votes", "vote.lua", extra=True)
        pids = descendants(server.pid)
        cpu_before = cpu_seconds(pids)
        helpers_before = {name: cpu_seconds([pid]) for name, pid in helpers.items()}
        wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        vote_runs = series(
            "votes", base + "/v1/votes", "vote.lua", extra=True, connections=vote_connections
        )
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(pids) - cpu_before
        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        votes = median_run(vote_runs)
        accepted = sum(r.requests - r.errors for r in vote_runs)
        figures.accepted += accepted
        figures.cpu_per_vote = cpu / max(accepted, 1)
        figures.server_busy = cpu / elapsed
        for name, pid in helpers.items():
            used = cpu_seconds([pid]) - helpers_before[name]
            figures.other_cpu_per_vote[name] = used / max(accepted, 1)
        wrk_cpu = (wrk_after.ru_utime + wrk_after.ru_stime) - (
            wrk_before.ru_utime + wrk_before.ru_stime
        )
        figures.other_cpu_per_vote["wrk"] = wrk_cpu / max(accepted, 1)

        target = votes.rate / 2

        def paced_runs(p99s: list[float]) -> Run:
            """``--paced-runs`` open-loop runs at ``target`` (their p99s into ``p99s``):
            the one of median p99, as one run's tail moves with the host's other work."""
            runs = [
                wrk(
                    base + "/v1/votes",
                    "vote_paced.lua",
                    opts.paced_seconds,
                    opts.paced_connections,
                    [phones.take(), "1", str(round(target))],
                    cpus=pinning.load,
                )
                for _ in range(opts.paced_runs)
            ]
            figures.errors += sum(r.errors for r in runs)
            figures.accepted += sum(r.requests - r.errors for r in runs)
            p99s += [r.p99_ms for r in runs]
            return runs[sorted(range(len(runs)), key=lambda i: runs[i].p99_ms)[len(runs) // 2]]

        client.config_set("slowlog-log-slower-than", 2000)
        client.slowlog_reset()
        paced = paced_runs(figures.p99_runs)
        figures.slow_commands = slow_commands(client)
        flusher = helpers.get("flusher")
        if flusher:
            # The same load with the flusher stopped, to show what its reads cost the p99.
            os.kill(flusher, signal.SIGSTOP)
            try:
                quiet = paced_runs(figures.p99_paused_runs)
            finally:
                os.kill(flusher, signal.SIGCONT)
            figures.p99_paused_flusher = quiet.p99_ms
            wait_flushed(client, keys)
        # Replies still in flight when wrk stopped may have been written: allow for them.
        time.sleep(0.5)
        figures.written = tally_total(client, keys) - written_before
        figures.ping, figures.tally, figures.votes = ping.rate, tally.rate, votes.rate
        figures.ping_p99, figures.tally_p99 = ping.p99_ms, tally.p99_ms
        figures.paced_target, figures.paced_rate = target, paced.rate
        figures.p50, figures.p99 = paced.p50_ms, paced.p99_ms
        print(
            f"    paced  {paced.rate:.0f} req/s (target {target:.0f}): "
            f"p50 {paced.p50_ms:.2f} ms, p99 {paced.p99_ms:.2f} ms "
            f"(runs {', '.join(f'{v:.2f}' for v in figures.p99_runs)}; flusher paused "
            f"{', '.join(f'{v:.2f}' for v in figures.p99_paused_runs) or '-'})",
            flush=True,
        )
        if verified is not None:  # while this server runs: the unverified runs alternate
            figures.verified = verified.measure(
                workers, base, server.pid, vote_connections, votes.rate
            )
    finally:
        stop(server)
    return figures
