"""``python -m loadtest.bench``: measure everything, print it, write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import redis

import loadtest.bench
from loadtest.bench.campaign import SECRET, campaign_toml
from loadtest.bench.metrics_cost import MetricsCost, measure_metrics_cost, server_env
from loadtest.bench.otp import CodeMemory, code_memory
from loadtest.bench.processes import VENV_BIN, Pinning, need_tools, stop
from loadtest.bench.redis_side import RedisFigures, redis_benchmark, redis_memory
from loadtest.bench.report import report, write_section
from loadtest.bench.server import ServerFigures, measure_server
from loadtest.bench.verified import VerifiedBench
from loadtest.bench.wrk import Phones
from votesvc.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]


def measure(
    opts: argparse.Namespace, pinning: Pinning, work: Path
) -> tuple[list[ServerFigures], MetricsCost | None, RedisFigures, CodeMemory | None, str]:
    """Every figure: the servers, what metrics cost (unless --no-metrics-cost), Redis
    alone, Redis memory (a pending code too, unless --no-verified); and what the flusher
    was."""
    campaign = work / "campaign.toml"
    campaign.write_text(campaign_toml())
    server = EmbeddedRedis(work / "data", appendfsync=opts.appendfsync)
    server.start()
    env = {
        **os.environ,
        "VOTESVC_DATA_DIR": str(work / "data"),
        "VOTESVC_CAMPAIGN": str(campaign),
        "VOTESVC_SECRET": SECRET,
        "VOTESVC_REDIS_URL": server.url,
        "VOTESVC_LOG_LEVEL": "WARNING",
        "VOTESVC_FLUSH_IN_SERVE": "false",  # the flusher runs as its own process
    }
    env = server_env(env, None)  # metrics off (the default) but in the metrics cost's on-runs
    flusher_process = subprocess.Popen(
        ["taskset", "-c", pinning.load, str(VENV_BIN / "votesvc"), "flush"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    flusher = "`votesvc flush` in its own process"
    helpers = {"Redis": server.pid() or 0, "flusher": flusher_process.pid}
    client = redis.Redis(unix_socket_path=str(server.socket))
    phones = Phones()
    verified = VerifiedBench(opts, env, pinning, phones, client, work) if opts.verified else None
    print(f"bench: pinning: {pinning.text}; flusher: {flusher}", flush=True)
    try:
        if verified is not None:
            verified.start()
        servers = [
            measure_server(int(n), opts, env, pinning, phones, client, helpers, verified)
            for n in opts.workers.split(",")
        ]
        cost = None
        if opts.metrics_cost:
            one = next((s for s in servers if s.workers == 1), None)
            if one is None:
                print("  metrics cost: skipped (it runs 1 worker; --workers has no 1)", flush=True)
            else:  # at the vote peak that server found
                # paced at half that server's vote peak, as the latency figures are
                cost = measure_metrics_cost(
                    opts, env, pinning, phones, opts.paced_connections, one.votes / 2
                )
        if flusher_process.poll() is not None:
            flusher = f"`votesvc flush` (it exited early, status {flusher_process.returncode})"
        print("  Redis alone: redis-benchmark with cast_vote.lua", flush=True)
        store = RedisFigures()
        store.script_rate = redis_benchmark(server, pinning, opts.redis_requests, 1)
        store.batch_rate = redis_benchmark(server, pinning, opts.redis_requests, store.batch)
    finally:
        if verified is not None:
            verified.close()
        client.close()
        stop(flusher_process)
        server.stop()
    print(f"  Redis memory: {opts.voters:,} voters cast through cast_vote.lua", flush=True)
    memory = redis_memory(work / "memory", opts.voters)
    store.voters = memory.voters
    store.bytes_per_phone_day = memory.bytes_per_phone_day
    store.bytes_per_phone_day_usage = memory.bytes_per_phone_day_usage
    store.codes_per_phone_day = memory.codes_per_phone_day
    store.bytes_per_stream_entry = memory.bytes_per_stream_entry
    store.calls_per_batch = memory.calls_per_batch
    print("  Redis memory: the same, every vote with an Idempotency-Key", flush=True)
    keyed = redis_memory(work / "memory-keyed", opts.voters, keyed=True)
    store.bytes_per_phone_day_keyed = keyed.bytes_per_phone_day
    store.calls_per_batch_keyed = keyed.calls_per_batch
    codes = None
    if opts.verified:
        print(f"  Redis memory: {opts.codes:,} pending codes sent through OneTimeCodes", flush=True)
        codes = code_memory(work / "memory-codes", opts.codes)
    return servers, cost, store, codes, flusher


def _levels(text: str) -> list[int]:
    try:
        levels = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of connection counts: {text!r}") from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError("connection counts must be positive")
    return levels


def main() -> int:
    description = (loadtest.bench.__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench", description=description)
    parser.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per full-load run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--connections",
        type=_levels,
        default=_levels("50,100,200,400"),
        help="wrk connection counts to probe; each endpoint runs at its peak",
    )
    parser.add_argument("--probe-seconds", type=int, default=3, help="seconds per probe run")
    parser.add_argument("--paced-seconds", type=int, default=10, help="seconds per paced run")
    parser.add_argument(
        "--paced-runs", type=int, default=3, help="paced runs per figure (the median p99)"
    )
    parser.add_argument("--paced-connections", type=int, default=64)
    parser.add_argument("--voters", type=int, default=1_000_000)
    parser.add_argument("--redis-requests", type=int, default=400_000)
    parser.add_argument(
        "--no-verified",
        dest="verified",
        action="store_false",
        help="skip the verified-voter figures (token votes, SMS code pairs, pending codes)",
    )
    parser.add_argument(
        "--otp-clients", type=int, default=32, help="concurrent clients of the SMS code pairs"
    )
    parser.add_argument(
        "--codes", type=int, default=100_000, help="pending codes the Redis memory figure sends"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=18080,
        help="the server's port (the verified server's: port + 1, its SMS gateway's: port + 2)",
    )
    parser.add_argument(
        "--no-metrics-cost",
        dest="metrics_cost",
        action="store_false",
        help="skip what Prometheus metrics cost a vote (3 pairs of 1-worker runs, off and on)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--appendfsync",
        choices=("always", "everysec"),
        default="always",
        help="the embedded Redis's AOF policy (default always, as `votesvc serve`)",
    )
    opts = parser.parse_args()
    need_tools()

    load = f"{os.getloadavg()[0]:.2f}"
    pinning = Pinning.plan()
    work = Path(tempfile.mkdtemp(prefix="votesvc-bench-"))
    try:
        servers, cost, store, codes, flusher = measure(opts, pinning, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    text = report(opts, servers, cost, store, codes, pinning, flusher, load)
    print()
    print(text)
    if not opts.no_write:
        write_section(opts.output, text)
        print(f"\nbench: written to {opts.output}")
    return 0


raise SystemExit(main())
