"""Vote latency at one fixed rate, run after run: where does the p99 come from?

    .venv/bin/python -m loadtest.bench_paced [--rate 7000] [--runs 3] [--seconds 10]
    PYTHONPATH=/path/to/other/checkout .venv/bin/python -m loadtest.bench_paced ...

``make bench`` gives the p99 at half the vote peak once per server; this runs
only that part, as often as asked, so that two versions of the code (the second
form above runs another checkout's ``votesvc``: an A/B, run them alternately)
or two set-ups can be compared by their spread rather than by one run. Each
run starts nothing new: one embedded Redis (AOF, ``appendfsync always``), one
``votesvc flush`` process and one ``votesvc serve --workers 1``, pinned as
``make bench`` pins them, then ``--runs`` open-loop runs of
``wrk/vote_paced.lua`` at ``--rate`` votes/s (every vote a new phone).

Per run it prints the rate reached, p50 and p99 (ms), the CPU each process
spent per vote (µs: server, Redis, flusher; from ``/proc``), the AOF bytes
written per vote and the forks Redis made (AOF rewrites) during the run.
``--flusher paused`` stops the flusher (SIGSTOP) for the runs; ``--metrics``
serves Prometheus metrics (on a free loopback port). ``--redis-config
NAME=VALUE`` (repeatable) sets a Redis setting before the runs. Afterwards
``INFO commandstats`` of all runs, by time spent. Loopback only; it ends by
itself (needs Debian's ``wrk``: ``deploy/system-packages.sh bench``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import redis

from loadtest.bench.campaign import SECRET, campaign_toml
from loadtest.bench.processes import (
    VENV_BIN,
    Pinning,
    cpu_seconds,
    descendants,
    free_port,
    need_tools,
    stop,
    wait_http,
)
from loadtest.bench.wrk import Phones, wrk
from votesvc.redis_server import EmbeddedRedis


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"not NAME=VALUE: {text!r}")
    return name, value


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.bench_paced", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--rate", type=int, default=7000, help="votes per second")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--flusher", choices=("on", "paused"), default="on")
    parser.add_argument("--redis-config", type=_setting, action="append", default=[])
    parser.add_argument(
        "--metrics", action="store_true", help="serve with Prometheus metrics on (a free port)"
    )
    parser.add_argument("--port", type=int, default=18090)
    opts = parser.parse_args()
    need_tools()
    pinning = Pinning.plan()
    work = Path(tempfile.mkdtemp(prefix="votesvc-paced-"))
    (work / "campaign.toml").write_text(campaign_toml())
    store = EmbeddedRedis(work / "data")
    store.start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")},
        "VOTESVC_DATA_DIR": str(work / "data"),
        "VOTESVC_CAMPAIGN": str(work / "campaign.toml"),
        "VOTESVC_SECRET": SECRET,
        "VOTESVC_REDIS_URL": store.url,
        "VOTESVC_LOG_LEVEL": "WARNING",
        "VOTESVC_FLUSH_IN_SERVE": "false",
    }
    votesvc = str(VENV_BIN / "votesvc")
    flusher = subprocess.Popen(
        ["taskset", "-c", pinning.load, votesvc, "flush"], env=env, stdout=subprocess.DEVNULL
    )
    metrics = {"VOTESVC_METRICS_PORT": str(free_port())} if opts.metrics else {}
    server = subprocess.Popen(
        ["taskset", "-c", pinning.server, votesvc, "serve", "--port", str(opts.port)],
        env=env | metrics,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(unix_socket_path=str(store.socket))
    base = f"http://127.0.0.1:{opts.port}"
    phones = Phones()
    redis_pid = store.pid() or 0
    print(
        f"bench_paced: {pinning.text}; flusher {opts.flusher}; "
        f"metrics {'on' if opts.metrics else 'off'}",
        flush=True,
    )
    try:
        wait_http(base + "/readyz")
        wait_http(base + "/v1/tally")
        wrk(base + "/v1/votes", "vote.lua", 3, 100, [phones.take(), "1"], cpus=pinning.load)
        for name, value in opts.redis_config:
            client.config_set(name, value)
        client.config_resetstat()
        if opts.flusher == "paused":
            os.kill(flusher.pid, signal.SIGSTOP)
        for _ in range(opts.runs):
            pids = descendants(server.pid)
            before = [cpu_seconds(pids), cpu_seconds([redis_pid]), cpu_seconds([flusher.pid])]
            aof: int = client.info("persistence")["aof_current_size"]
            forks: int = client.info("stats")["total_forks"]
            run = wrk(
                base + "/v1/votes",
                "vote_paced.lua",
                opts.seconds,
                opts.connections,
                [phones.take(), "1", str(opts.rate)],
                cpus=pinning.load,
            )
            after = [cpu_seconds(pids), cpu_seconds([redis_pid]), cpu_seconds([flusher.pid])]
            per_vote = [
                (b - a) * 1e6 / max(run.requests, 1) for a, b in zip(before, after, strict=True)
            ]
            forked = client.info("stats")["total_forks"] - forks
            grown = client.info("persistence")["aof_current_size"] - aof
            written = "rewritten" if forked else f"{grown / max(run.requests, 1):.0f} B"
            print(
                f"  {run.rate:,.0f} votes/s  p50 {run.p50_ms:.2f} ms  p99 {run.p99_ms:.2f} ms  "
                f"errors {run.errors}  µs/vote server {per_vote[0]:.0f} Redis {per_vote[1]:.0f} "
                f"flusher {per_vote[2]:.0f}  AOF/vote {written}  forks {forked}  "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        stats = client.info("commandstats")
        ranked = sorted(stats.items(), key=lambda item: -item[1]["usec"])
        print("  Redis commands, all runs:")
        for name, stat in ranked[:12]:
            print(
                f"    {name.removeprefix('cmdstat_'):18} calls {stat['calls']:>9,} "
                f"µs/call {stat['usec_per_call']:7.1f}",
                flush=True,
            )
    finally:
        if opts.flusher == "paused":
            os.kill(flusher.pid, signal.SIGCONT)
        stop(server)
        stop(flusher)
        client.close()
        store.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
