"""Scale-out benchmark: votes/s with 1 and 2 API processes, on one Redis and on a cluster.

    .venv/bin/python -m loadtest.bench_scaleout [--seconds 5] [--repeats 3] [--connections 128]

For each Redis setup, one ``redis-server`` and then a three-master Redis
Cluster (``tests/cluster.py``, as the suite forms it), both with AOF on and
``appendfsync always`` (as ``deploy/redis/redis-cluster-node.conf``) and no
replicas: the campaign is set up by ``votesvc flush --once``, then 1 and then 2
``votesvc serve --workers 1`` processes take votes, each from its own wrk
(``loadtest/wrk/vote.lua``, every vote a new phone, so every reply is a 201),
all at once. No flusher runs (its cost is measured in "Flusher ingest"). A
figure is the median of ``--repeats`` runs of ``--seconds``; CPU per vote comes
from ``/proc`` (the API processes, every Redis server) and from wrk's own
rusage. Nothing is pinned: on a 2-core machine the load generator, the API
processes and Redis share the cores, which is the caveat of every figure here.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import redis

from loadtest.bench.campaign import SECRET, campaign_toml
from loadtest.bench.processes import (
    VENV_BIN,
    cpu_seconds,
    descendants,
    free_port,
    stop,
    wait_http,
)
from loadtest.bench.wrk import Phones, Run, wrk
from tests.cluster import LocalCluster
from votesvc.redis_server import find_redis_server


@dataclass
class Figures:
    setup: str
    apis: int
    rates: list[float]  # votes/s of each run (all API processes together)
    errors: int
    redis_us: float  # Redis CPU per vote, µs (every server of the setup)
    api_us: float  # API processes' CPU per vote, µs
    wrk_us: float
    load: float  # load average (1 min) at the end

    @property
    def rate(self) -> float:
        return sorted(self.rates)[len(self.rates) // 2]


class Single:
    """One ``redis-server`` on loopback, configured as the cluster's nodes are."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.root.mkdir(parents=True)
        self.process = subprocess.Popen(
            [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.root), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not _answers(self.port):
            if time.monotonic() > deadline:
                raise SystemExit("bench: redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, signal.SIGTERM)


def _answers(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=1) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def durable(ports: list[int]) -> None:
    """AOF on, fsync before every reply: as a production node runs."""
    for port in ports:
        with redis.Redis(port=port) as client:
            client.config_set("appendonly", "yes")
            client.config_set("appendfsync", "always")


def redis_pids(ports: list[int]) -> list[int]:
    pids = []
    for port in ports:
        with redis.Redis(port=port) as client:
            pids.append(int(client.info("server")["process_id"]))
    return pids


def measure(
    setup: str,
    url: str,
    cluster: bool,
    ports: list[int],
    root: Path,
    opts: argparse.Namespace,
    phones: Phones,
) -> list[Figures]:
    root.mkdir(parents=True)
    campaign = root / "campaign.toml"
    campaign.write_text(campaign_toml())
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
    env |= {
        "VOTESVC_DATA_DIR": str(root / "data"),
        "VOTESVC_REDIS_URL": url,
        "VOTESVC_REDIS_CLUSTER": "true" if cluster else "false",
        "VOTESVC_SECRET": SECRET,
        "VOTESVC_CAMPAIGN": str(campaign),
        "VOTESVC_FLUSH_IN_SERVE": "false",
        "VOTESVC_LOG_LEVEL": "WARNING",
    }
    votesvc = str(VENV_BIN / "votesvc")
    subprocess.run([votesvc, "flush", "--once"], env=env, check=True, capture_output=True)
    servers = redis_pids(ports)
    found = []
    for apis in (1, 2):
        procs = []
        bases = []
        try:
            for _ in range(apis):
                port = free_port()
                command = [votesvc, "serve", "--port", str(port), "--workers", "1"]
                with (root / f"serve-{port}.log").open("wb") as log:
                    procs.append(
                        subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                    )
                bases.append(f"http://127.0.0.1:{port}")
            for base in bases:
                wait_http(base + "/readyz", timeout=60)
            print(f"  {setup}, {apis} API process(es): warming up", flush=True)
            together(bases, 2, opts.connections, phones)
            api_pids = [pid for proc in procs for pid in descendants(proc.pid)]
            rates, errors = [], 0
            redis_cpu = api_cpu = wrk_cpu = 0.0
            accepted = 0
            for _ in range(opts.repeats):
                redis_before, api_before = cpu_seconds(servers), cpu_seconds(api_pids)
                wrk_before = _children_cpu()
                runs = together(bases, opts.seconds, opts.connections, phones)
                redis_cpu += cpu_seconds(servers) - redis_before
                api_cpu += cpu_seconds(api_pids) - api_before
                wrk_cpu += _children_cpu() - wrk_before
                rates.append(sum(run.rate for run in runs))
                errors += sum(run.errors for run in runs)
                accepted += sum(run.requests - run.errors for run in runs)
            per_vote = 1e6 / max(accepted, 1)
            figures = Figures(
                setup,
                apis,
                rates,
                errors,
                redis_cpu * per_vote,
                api_cpu * per_vote,
                wrk_cpu * per_vote,
                os.getloadavg()[0],
            )
            print(
                f"    votes/s {[round(r) for r in rates]}, errors {errors}, per vote: "
                f"Redis {figures.redis_us:.1f} µs, API {figures.api_us:.1f} µs, "
                f"wrk {figures.wrk_us:.1f} µs",
                flush=True,
            )
            found.append(figures)
        finally:
            for proc in procs:
                stop(proc)
    return found


def together(bases: list[str], seconds: float, connections: int, phones: Phones) -> list[Run]:
    """One wrk per API process, all at once."""
    with ThreadPoolExecutor(len(bases)) as pool:
        calls = [
            pool.submit(
                wrk, base + "/v1/votes", "vote.lua", seconds, connections, [phones.take(), "1"]
            )
            for base in bases
        ]
        return [call.result() for call in calls]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _redis_version() -> str:
    reply = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True)
    return reply.stdout.split()[2]  # "v=7.0.15"


def table(results: list[Figures]) -> str:
    lines = [
        "| Redis | API processes | votes/s (median) | runs | Redis CPU per vote | API CPU per vote "
        "| wrk CPU per vote | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in results:
        runs = ", ".join(f"{r:,.0f}" for r in f.rates)
        lines.append(
            f"| {f.setup} | {f.apis} | {f.rate:,.0f} | {runs} | {f.redis_us:.1f} µs "
            f"| {f.api_us:.1f} µs | {f.wrk_us:.1f} µs | {f.errors} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=128, help="per API process")
    opts = parser.parse_args(argv)
    for tool in ("wrk", "redis-cli"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is missing: bash deploy/system-packages.sh bench")
    load_before = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, "
        f"{_redis_version()}, "
        f"load average {load_before[0]:.2f} at the start",
        flush=True,
    )
    phones = Phones()
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="votesvc-scaleout-") as tmp:
        root = Path(tmp)
        single = Single(root / "single")
        single.start()
        try:
            durable([single.port])
            results += measure("one", single.url, False, [single.port], root / "one", opts, phones)
        finally:
            single.stop()
        cluster = LocalCluster(root / "cluster")
        cluster.start()
        try:
            durable(cluster.ports)
            results += measure(
                "cluster (3 masters)", cluster.url, True, cluster.ports, root / "three", opts,
                phones,
            )  # fmt: skip
        finally:
            cluster.stop()
    print()
    print(table(results))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
