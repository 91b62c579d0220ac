"""SSE fan-out benchmark: do 1,000 open tally streams multiply Redis reads?

    .venv/bin/python -m loadtest.bench_sse [--clients 1000] [--seconds 20]

It starts its own embedded Redis and ``votesvc serve`` (one worker, loopback,
its own data directory and campaign file, the flusher off so that only the
tally touches the counters), then measures two windows of the same length
while a steady trickle of votes (``--votes-per-second``) keeps the tally
changing:

1. no stream open;
2. ``--clients`` streams open on ``/v1/tally/stream`` (raw asyncio sockets,
   each counting the events it receives).

For each window it reads ``INFO commandstats`` after a ``CONFIG RESETSTAT``:
a tally refresh is one pipeline of ``HGETALL`` over the counter shards, so
refreshes/s = HGETALL calls / shards / seconds, to compare with
1 / ``VOTESVC_TALLY_REFRESH``. It also reports the events delivered, the
server's CPU use, and how long ``SIGTERM`` takes to stop the server with
every stream still open. Everything stays on 127.0.0.1 and ends by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from votesvc.campaign import demo_campaign_text
from votesvc.redis_server import EmbeddedRedis

SHARDS = 16


@dataclass
class Window:
    seconds: float
    hgetall: int
    commands: int
    votes: int
    breakdown: dict[str, int]
    events: int = 0
    cpu_seconds: float = 0.0
    per_client: list[int] = field(default_factory=list)

    def refreshes_per_second(self) -> float:
        return self.hgetall / SHARDS / self.seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def command_stats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


class StreamClient:
    """One raw-socket SSE client that counts ``data:`` events."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.events = 0
        self.first = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None
        self.closed_by_server = False

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer = writer
        writer.write(
            f"GET /v1/tally/stream HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream refused: {status!r}")
        async for line in reader:  # chunked framing lines are counted out by the prefix
            if line.startswith(b"data: "):
                self.events += 1
                self.first.set()
        self.closed_by_server = True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def vote_steadily(url: str, rate: float, seconds: float, start: int) -> int:
    """POST one vote per 1/rate seconds from fresh phones; returns the 201s."""
    accepted = 0
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        n = 0
        while (now := loop.time()) < begin + seconds:
            due = begin + n / rate
            if due > now:
                await asyncio.sleep(due - now)
            body = {"nominee": f"N{n % 30 + 1:02d}", "phone": f"137{start + n:08d}"}
            response = await http.post("/v1/votes", json=body)
            accepted += response.status_code == 201
            n += 1
    return accepted


async def measure(
    redis_client: redis.Redis, url: str, pid: int, args: argparse.Namespace, phones: int
) -> Window:
    redis_client.config_resetstat()
    cpu_before = cpu_seconds(pid)
    started = time.monotonic()
    votes = await vote_steadily(url, args.votes_per_second, args.seconds, phones)
    elapsed = time.monotonic() - started
    calls = command_stats(redis_client)
    return Window(
        elapsed,
        calls.get("hgetall", 0),
        sum(calls.values()),
        votes,
        calls,
        cpu_seconds=cpu_seconds(pid) - cpu_before,
    )


async def run(
    args: argparse.Namespace, port: int, server: subprocess.Popen[bytes], redis_client: redis.Redis
) -> None:
    pid = server.pid
    url = f"http://127.0.0.1:{port}"
    idle = await measure(redis_client, url, pid, args, phones=0)

    clients = [StreamClient(port) for _ in range(args.clients)]
    tasks = [asyncio.create_task(client.run()) for client in clients]
    opened = time.monotonic()
    async with asyncio.timeout(60):
        await asyncio.gather(*(client.first.wait() for client in clients))
    connect_seconds = time.monotonic() - opened
    for client in clients:
        client.events = 0
    busy = await measure(redis_client, url, pid, args, phones=1_000_000)
    busy.per_client = [client.events for client in clients]
    busy.events = sum(busy.per_client)
    alive = sum(not task.done() for task in tasks)

    stopping = time.monotonic()
    server.send_signal(signal.SIGTERM)
    await asyncio.to_thread(server.wait, 30)
    shutdown_seconds = time.monotonic() - stopping
    for client in clients:
        client.close()
    await asyncio.gather(*tasks, return_exceptions=True)

    refresh = args.refresh
    print()
    print(f"## SSE fan-out ({args.clients} streams, one worker, refresh {refresh}s)")
    print()
    print(
        "| window | streams | tally refreshes/s (HGETALL/16/s) | Redis commands/s | votes/s |"
        " events delivered/s | server CPU |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, window, streams in (("idle", idle, 0), ("fan-out", busy, args.clients)):
        print(
            f"| {name} | {streams} | {window.refreshes_per_second():.2f} "
            f"| {window.commands / window.seconds:.1f} | {window.votes / window.seconds:.1f} "
            f"| {window.events / window.seconds:.0f} "
            f"| {100 * window.cpu_seconds / window.seconds:.0f}% |"
        )
    print()
    per_client = sorted(busy.per_client)
    print(f"- target: at most 1/refresh = {1 / refresh:.2f} refreshes/s whatever the streams")
    print(
        f"- {args.clients} streams opened and got their first event in {connect_seconds:.2f}s;"
        f" {alive} still open at the end of the window"
    )
    print(
        f"- events per stream in {busy.seconds:.0f}s: min {per_client[0]},"
        f" median {per_client[len(per_client) // 2]}, max {per_client[-1]}"
        f" (at most 2/s by design)"
    )
    print(f"- SIGTERM with {args.clients} streams open: server gone in {shutdown_seconds:.2f}s")
    for name, window in (("idle", idle), ("fan-out", busy)):
        calls = ", ".join(f"{cmd} {n}" for cmd, n in sorted(window.breakdown.items()))
        print(f"- Redis calls in the {name} window ({window.seconds:.1f}s): {calls}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--votes-per-second", type=float, default=20.0)
    parser.add_argument("--refresh", type=float, default=0.5)
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 2 * args.clients + 512))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # the server inherits it

    workdir = Path(tempfile.mkdtemp(prefix="votesvc-bench-sse-"))
    redis_server = EmbeddedRedis(workdir / "redis-home")
    campaign = workdir / "campaign.toml"
    campaign.write_text(
        demo_campaign_text()
        .replace("ip_limit = 600 ", "ip_limit = 10000000 ")
        .replace(
            'closes_at = "2027-12-31T23:59:59+08:00"', 'closes_at = "2099-12-31T23:59:59+08:00"'
        )
    )
    port = free_port()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs (server, clients and Redis share"
        f" them), Python {platform.python_version()}",
        flush=True,
    )
    redis_server.start()
    server = None
    try:
        env = {
            **os.environ,
            "VOTESVC_REDIS_URL": redis_server.url,
            "VOTESVC_DATA_DIR": str(workdir / "data"),
            "VOTESVC_CAMPAIGN": str(campaign),
            "VOTESVC_SECRET": "bench-secret-not-for-production-use",
            "VOTESVC_TALLY_REFRESH": str(args.refresh),
            "VOTESVC_SHARDS": str(SHARDS),
            "VOTESVC_FLUSH_IN_SERVE": "false",
            "VOTESVC_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "votesvc", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=2) as http:
            while True:
                try:
                    if http.get(f"http://127.0.0.1:{port}/v1/tally").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("votesvc serve did not start")
                time.sleep(0.1)
        client = redis.Redis(unix_socket_path=str(redis_server.socket))
        try:
            asyncio.run(run(args, port, server, client))
        finally:
            client.close()
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
