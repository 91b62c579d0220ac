"""A fleet on one machine: campaign night's shape, proven exact.

A real three-master Redis Cluster and a throwaway PostgreSQL; two ``votesvc
serve --workers 2`` processes without a flusher of their own and two ``votesvc
flush`` processes, every one with its metrics port. Votes from new phones go
to both API processes for a few seconds; midway one flusher is killed with
SIGKILL (its batch in hand stays pending) and started again. Once the
backlog is 0: every 201's vote id is in PostgreSQL exactly once, ``votesvc
reconcile`` is clean, every master holds votes, each process's /metrics
moved, and no flusher logged an error.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio.cluster import RedisCluster

from tests.cluster import LocalCluster
from tests.ledger_support import REPO, write_campaign
from tests.localhost import free_port, wait_until
from tests.pgcluster import PgCluster
from tests.serving import Serve
from tests.support import SECRET, phone, wait_for
from tests.test_metrics import scrape, value
from votesvc.keys import Keys
from votesvc.ledger.gauges import sample_ledger

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(110)]

CAMPAIGN = "fleet-night"
NOMINEES = ["N01", "N02", "N03", "N04"]
SENDERS = 3  # votes in flight per API process
MAX_VOTES = 4000  # the whole run's bound, whatever happens
VOTING_FOR = 25.0  # seconds: the sending's bound, whatever happens
AFTER_RESTART = 150  # votes sent at least once the restarted flusher runs (and until it wrote)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    if shutil.which("redis-cli") is None:  # `make setup-test` installs it as root
        pytest.skip("redis-cli (Debian redis-tools) is needed to form a cluster")
    local = LocalCluster(tmp_path / "cluster")
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture
def ledger_url(pg_cluster: PgCluster) -> str:
    async def create() -> str:
        conn = await asyncpg.connect(pg_cluster.url(), timeout=10)
        try:
            await conn.execute("CREATE DATABASE fleet")
        finally:
            await conn.close()
        return pg_cluster.url("fleet")

    return asyncio.run(create())


class Fleet:
    """The processes' common environment; the flushers it started."""

    def __init__(self, root: Path, cluster: LocalCluster, ledger_url: str, campaign: Path) -> None:
        self.root = root
        self.campaign = campaign
        self.env = {
            "VOTESVC_SECRET": SECRET.decode(),
            "VOTESVC_REDIS_URL": cluster.url,
            "VOTESVC_REDIS_CLUSTER": "true",
            "VOTESVC_DATABASE_URL": ledger_url,
            "VOTESVC_FLUSH_IN_SERVE": "false",
            "VOTESVC_FLUSH_INTERVAL": "0.1",
            # A busy 2-CPU test machine must not turn into 503s: this test is not about them.
            "VOTESVC_REDIS_TIMEOUT": "5",
        }
        self.flushers: list[subprocess.Popen[bytes]] = []

    def serve(self, name: str, metrics_port: int) -> Serve:
        env = self.env | {"VOTESVC_METRICS_PORT": str(metrics_port)}
        return Serve(self.root / name, self.campaign, env, ["--workers", "2"])

    def flush(self, name: str, metrics_port: int) -> subprocess.Popen[bytes]:
        data = self.root / name
        data.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
        env |= self.env | {
            "VOTESVC_DATA_DIR": str(data),
            "VOTESVC_CAMPAIGN": str(self.campaign),
            "VOTESVC_METRICS_PORT": str(metrics_port),
        }
        with (data / "flush.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "votesvc", "flush"],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.flushers.append(process)
        return process

    def stop_flushers(self) -> None:
        for process in self.flushers:
            if process.poll() is None:
                process.terminate()
        for process in self.flushers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@dataclass
class Voting:
    """Votes from new phones to every API process, until told to stop (or the bounds)."""

    urls: list[str]
    sent: int = 0
    accepted: dict[int, list[str]] = field(default_factory=dict)  # API index -> vote ids
    refused: Counter[tuple[int, int]] = field(default_factory=Counter)  # (API, status)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        numbers = itertools.count()
        deadline = time.monotonic() + VOTING_FOR

        async def sender(api: int, client: httpx.AsyncClient) -> None:
            while not self.stop.is_set() and self.sent < MAX_VOTES:
                if time.monotonic() > deadline:
                    return
                n = next(numbers)
                self.sent += 1
                reply = await client.post(
                    "/v1/votes", json={"nominee": NOMINEES[n % len(NOMINEES)], "phone": phone(n)}
                )
                if reply.status_code == 201:
                    self.accepted.setdefault(api, []).append(reply.json()["vote_id"])
                else:
                    self.refused[api, reply.status_code] += 1

        clients = [httpx.AsyncClient(base_url=url, timeout=15) for url in self.urls]
        try:
            await asyncio.gather(
                *(sender(api, client) for api, client in enumerate(clients) for _ in range(SENDERS))
            )
        finally:
            for client in clients:
                await client.aclose()

    def all_ids(self) -> list[str]:
        return [vote_id for ids in self.accepted.values() for vote_id in ids]


def written(port: int) -> float:
    try:
        return value(scrape(port), "votesvc_flusher_votes_written_total")
    except httpx.HTTPError:
        return 0.0


def accepted_metric(port: int) -> float:
    return value(scrape(port), "votesvc_votes_total", code="accepted")


async def heartbeat_of(client: RedisCluster, keys: Keys, pid: int) -> bool:
    """The flusher of process ``pid`` beats (``host-pid-nonce@scope`` in the flushers hash)."""
    names: list[bytes] = await client.hkeys(keys.flushers())  # type: ignore[assignment]
    return any(f"-{pid}-".encode() in name for name in names)


async def ledger_ids(url: str) -> Counter[str]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows = await conn.fetch("SELECT vote_id FROM votes WHERE campaign = $1", CAMPAIGN)
    finally:
        await conn.close()
    return Counter(row["vote_id"] for row in rows)


async def test_a_fleet_on_a_cluster_loses_and_doubles_nothing(
    cluster: LocalCluster, ledger_url: str, tmp_path: Path, serve: list[Serve]
) -> None:
    started = time.monotonic()
    campaign = tmp_path / "campaign.toml"
    write_campaign(campaign, campaign_id=CAMPAIGN, nominees=len(NOMINEES))
    keys = Keys(CAMPAIGN, 16)
    fleet = Fleet(tmp_path, cluster, ledger_url, campaign)
    api_ports, flush_ports = [free_port(), free_port()], [free_port(), free_port()]
    redis = RedisCluster.from_url(cluster.url)
    try:
        # The flushers set the campaign up; the API processes answer 503 until then.
        killed = fleet.flush("flush-a", flush_ports[0])
        fleet.flush("flush-b", flush_ports[1])
        serve += [fleet.serve(f"api-{n}", port) for n, port in enumerate(api_ports)]
        for api in serve:
            await asyncio.to_thread(wait_until, api.healthy, 60, f"API {api.url} ready")
        await redis.initialize()
        await wait_for(lambda: heartbeat_of(redis, keys, killed.pid), within=30)

        voting = Voting([api.url for api in serve])
        sending = asyncio.create_task(voting.run())
        # Midway: once the first flusher has written votes, kill it and start it again.
        await wait_for(lambda: metric_above(written, flush_ports[0], 0), within=30)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        flush_ports[0] = free_port()
        restarted = fleet.flush("flush-a", flush_ports[0])
        await wait_for(lambda: heartbeat_of(redis, keys, restarted.pid), within=30)
        restarted_at = voting.sent

        async def restarted_flusher_busy() -> bool:
            """Votes went on long enough for the restarted flusher to take its share."""
            if sending.done():  # the bounds ran out first: the asserts below say so
                return True
            return voting.sent >= restarted_at + AFTER_RESTART and await metric_above(
                written, flush_ports[0], 0
            )

        await wait_for(restarted_flusher_busy, within=30, interval=0.1)
        voting.stop.set()
        await sending
        ids = voting.all_ids()
        assert not voting.refused, voting.refused
        assert len(ids) == voting.sent
        assert voting.sent >= restarted_at + AFTER_RESTART  # the bounds did not cut it short
        assert all(voting.accepted.get(api) for api in range(len(serve)))

        async def backlog_flushed() -> bool:
            return (await sample_ledger(redis, keys)).backlog == 0

        await wait_for(backlog_flushed, within=30, interval=0.1)

        stored = await ledger_ids(ledger_url)
        assert set(stored) == set(ids)
        assert set(stored.values()) == {1}
        assert len(ids) == len(set(ids))

        reconciled = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "votesvc", "reconcile"],
            env={k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
            | fleet.env
            | {"VOTESVC_DATA_DIR": str(tmp_path / "flush-b"), "VOTESVC_CAMPAIGN": str(campaign)},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
        total = len(ids)
        assert reconciled.stdout.strip() == f"clean: live {total} = ledger {total} + pending 0"

        per_master: Counter[str] = Counter()
        for key in keys.tallies():
            node = redis.get_node_from_key(key)
            assert node is not None
            counts = await redis.hgetall(key)
            per_master[node.name] += sum(int(votes) for votes in counts.values())
        assert sum(per_master.values()) == total
        masters = {node.name for node in redis.get_primaries()}
        assert len(masters) == 3
        assert {name for name, votes in per_master.items() if votes} == masters

        # Each API process counted exactly its 201s (merged over its two workers) ...
        for index, port in enumerate(api_ports):
            count = len(voting.accepted[index])
            await wait_for(functools.partial(metric_is, accepted_metric, port, count), within=15)
        # ... and the other flusher wrote votes too (the killed one did before it died,
        # the restarted one once it ran).
        await wait_for(functools.partial(metric_above, written, flush_ports[1], 0), within=15)
    finally:
        await redis.aclose()
        fleet.stop_flushers()
    for process in fleet.flushers:
        assert process.returncode in (0, -signal.SIGKILL)
    assert [p.returncode for p in fleet.flushers].count(-signal.SIGKILL) == 1
    flush_logs = [fleet.root / name / "flush.log" for name in ("flush-a", "flush-b")]
    for text in map(Path.read_text, flush_logs):
        assert " ERROR " not in text, text
        assert "Traceback" not in text, text
    for api in serve:
        assert api.stop() == 0
        assert "Traceback" not in api.output(), api.output()
    assert time.monotonic() - started < 100


async def metric_above(read: Callable[[int], float], port: int, floor: float) -> bool:
    return await asyncio.to_thread(read, port) > floor


async def metric_is(read: Callable[[int], float], port: int, expected: float) -> bool:
    return await asyncio.to_thread(read, port) == expected
