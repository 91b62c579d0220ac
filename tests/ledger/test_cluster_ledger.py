"""The ledger side against a real three-master Redis Cluster.

The same commands as tests/ledger/test_cli.py and the flusher of
tests/ledger/test_flusher.py, on the suite's cluster: the flusher in ``serve``,
``flush --once``, ``reconcile``, ``void`` and ``restore``; and a flusher started
on a cluster client that has not learnt the cluster yet, again and again, as a
fleet's ``votesvc flush`` processes start.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from tests.cluster import LocalCluster
from tests.ledger_fixtures import ledger_settings
from tests.ledger_support import REPO, cli, service_env, write_campaign
from tests.localhost import free_port
from tests.support import FakeClock, phone, running_service, wait_for
from votesvc.connection import RedisClient
from votesvc.keys import Keys
from votesvc.ledger.flusher import GROUP
from votesvc.ledger.heartbeat import Heartbeat
from votesvc.ledger.reconcile import reconcile
from votesvc.ledger.runner import flush_until
from votesvc.ledger.store import LedgerVote, build_store
from votesvc.ledger.void import LiveCountersNotUpdated
from votesvc.ledger.void import _take_off_live_counters as take_off_live_counters
from votesvc.metrics import Metrics
from votesvc.settings import Settings

pytestmark = pytest.mark.slow

STARTS = 5  # fresh flusher starts per way of starting one


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if shutil.which("redis-cli") is None:  # `make setup-test` installs it as root
        pytest.skip("redis-cli (Debian redis-tools) is needed to form a cluster")
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture
def sync_cluster(cluster: LocalCluster) -> Iterator[Any]:
    client = RedisCluster.from_url(cluster.url)
    yield client
    client.close()


def live_tally(client: Any, keys: Keys) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in keys.tallies():
        for nominee, votes in client.hgetall(key).items():
            if int(votes):
                counts[nominee.decode()] = counts.get(nominee.decode(), 0) + int(votes)
    return counts


async def create_ledger(settings: Settings) -> None:
    store = build_store(settings)
    await store.open()
    await store.close()


def groups_everywhere(client: Any, keys: Keys) -> bool:
    """The ledger's consumer group exists on every shard's stream."""
    for stream in keys.streams():
        if not client.exists(stream):
            return False
        names = {info["name"].decode() for info in client.xinfo_groups(stream)}
        if GROUP not in names:
            return False
    return True


class ClusterScene:
    """A campaign of its own on the module's cluster, its CLI settings, and votes by the API."""

    def __init__(
        self, tmp_path: Path, cluster: LocalCluster, database_url: str | None, name: str
    ) -> None:
        path = tmp_path / "campaign.toml"
        name += "-pg" if database_url else "-sqlite"  # one module cluster: a campaign each
        self.campaign = write_campaign(path, campaign_id=name, votes_per_phone_per_day=3)
        self.keys = Keys(self.campaign.id, 16)
        self.url = cluster.url
        self.api_dir = tmp_path / "api"
        self.clock = FakeClock(time.time())
        self.settings: Settings = ledger_settings(
            tmp_path, database_url, redis_url=cluster.url, redis_cluster=True, campaign_path=path
        )

    def vote(self, *votes: tuple[str, str]) -> list[tuple[int, str]]:
        """(status, vote id or error code) per vote, in order."""

        async def run() -> list[tuple[int, str]]:
            out = []
            ledger = self.settings.database_url or f"sqlite:///{self.settings.database.path}"
            async with running_service(
                self.url,
                self.api_dir,
                campaign=self.campaign,
                clock=self.clock,
                database_url=ledger,
                redis_cluster=True,
            ) as service:
                for nominee, number in votes:
                    response = await service.vote(nominee, number)
                    body = response.json()
                    key = body["vote_id"] if response.status_code == 201 else body["error"]["code"]
                    out.append((response.status_code, key))
            return out

        return asyncio.run(run())

    def ledger_ids(self) -> list[str]:
        async def run() -> list[str]:
            store = build_store(self.settings)
            await store.open()
            try:
                return [v.vote_id async for chunk in store.votes(self.campaign.id) for v in chunk]
            finally:
                await store.close()

        return asyncio.run(run())


async def test_the_flusher_in_serve_moves_votes_into_the_ledger_on_a_cluster(
    cluster: LocalCluster, tmp_path: Path, database_url: str | None
) -> None:
    campaign_id = "cluster-serve-flusher-" + ("pg" if database_url else "sqlite")
    path = tmp_path / "campaign.toml"
    campaign = write_campaign(path, campaign_id=campaign_id)
    keys = Keys(campaign_id, 16)
    settings = ledger_settings(tmp_path, database_url)
    store = build_store(settings)
    await store.open()
    try:
        async with running_service(
            cluster.url,
            tmp_path,
            campaign=campaign,
            redis_cluster=True,
            flush_in_serve=True,
            flush_interval=0.1,
            database_url=database_url,
        ) as service:
            responses = await asyncio.gather(
                *(service.vote(f"N{n % 7 + 1:02d}", phone(n)) for n in range(90))
            )
            assert [r.status_code for r in responses] == [201] * 90
            ids = {r.json()["vote_id"] for r in responses}

            async def all_durable() -> bool:
                return await store.count(campaign_id) == 90

            await wait_for(all_durable, within=20.0)
            assert await store.existing_ids(campaign_id, sorted(ids)) == ids
            client: RedisClient = service.app.state.redis

            async def acknowledged() -> bool:
                return sum([await client.xlen(s) for s in keys.streams()]) == 0

            await wait_for(acknowledged, within=20.0)  # acknowledged, then trimmed
            result = await reconcile(client, keys, store, cluster=True)
            assert result.clean, result.differences
            assert sum(result.durable.values()) == 90
    finally:
        await store.close()


def test_flush_once_reconcile_void_and_restore_on_a_cluster(
    cluster: LocalCluster, sync_cluster: Any, tmp_path: Path, database_url: str | None
) -> None:
    scene = ClusterScene(tmp_path, cluster, database_url, "cluster-commands")
    cast = scene.vote(*((f"N{n % 5 + 1:02d}", phone(n)) for n in range(40)), ("N09", phone(0)))
    assert all(status == 201 for status, _ in cast)
    code, out, _ = cli(scene.settings, "reconcile")  # nothing flushed yet: all pending
    assert (code, out.strip()) == (0, "clean: live 41 = ledger 0 + pending 41")

    code, out, err = cli(scene.settings, "flush", "--once")
    assert code == 0, err
    assert "flushed 41" in out
    assert sorted(scene.ledger_ids()) == sorted(vote_id for _, vote_id in cast)
    code, out, _ = cli(scene.settings, "reconcile")
    assert (code, out.strip()) == (0, "clean: live 41 = ledger 41 + pending 0")

    # void flushes first: a vote cast a moment ago is voided too
    [(status, late)] = scene.vote(("N10", phone(1)))
    assert status == 201
    code, out, err = cli(
        scene.settings, "void", "--vote-id", cast[3][1], late, "--reason", "bot", "--by", "ops"
    )
    assert code == 0, err
    assert "voided 2 votes" in out
    before = live_tally(sync_cluster, scene.keys)
    assert sum(before.values()) == 40
    assert "N10" not in before
    assert cli(scene.settings, "reconcile")[0] == 0

    # A difference on one master is found and listed
    sync_cluster.hincrby(scene.keys.tally(11), "N02", 2)
    code, out, _ = cli(scene.settings, "reconcile")
    assert code == 1
    [row] = [line.split() for line in out.splitlines() if line.startswith("N02")]
    assert row[-1] == "+2"
    sync_cluster.hincrby(scene.keys.tally(11), "N02", -2)

    # Every master lost its data: votes wait (503) until restore rebuilds the counters
    sync_cluster.flushall(target_nodes=RedisCluster.PRIMARIES)
    assert scene.vote(("N07", phone(99)))[0] == (503, "unavailable")
    code, out, err = cli(scene.settings, "restore")
    assert code == 0, out + err
    assert "clean: live 40" in out
    assert live_tally(sync_cluster, scene.keys) == before
    assert scene.vote(("N07", phone(99)))[0][0] == 201
    # today's dedup records and quotas came back with it, voided votes included
    assert scene.vote(("N01", phone(5)))[0] == (409, "already_voted")
    # phone 1 voted N02, then N10 (voided: its quota is not given back); the limit is 3
    assert [status for status, _ in scene.vote(("N03", phone(1)), ("N04", phone(1)))] == [201, 429]


async def test_flushers_started_on_a_fresh_cluster_client_start_cleanly(
    cluster: LocalCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What ``votesvc flush`` runs (setup, flusher, heartbeat, metrics), on a client
    that knows nothing of the cluster yet, for a campaign whose groups do not exist."""
    caplog.set_level(logging.WARNING, logger="votesvc")
    checker = RedisCluster.from_url(cluster.url)
    try:
        for start in range(STARTS):
            path = tmp_path / f"campaign-{start}.toml"
            campaign = write_campaign(path, campaign_id=f"fresh-start-{start}")
            keys = Keys(campaign.id, 16)
            settings = ledger_settings(
                tmp_path / f"start-{start}",
                None,
                redis_url=cluster.url,
                redis_cluster=True,
                campaign_path=path,
                flush_interval=0.05,
            )
            # The ledger exists, as a fleet's does: the campaign's set-up and the flusher
            # opening one new SQLite file at once is no part of this ("database is locked").
            await create_ledger(settings)
            stop = asyncio.Event()
            running = asyncio.create_task(flush_until(settings, keys, campaign, stop, Metrics()))

            async def ready(keys: Keys = keys) -> bool:
                return bool(await asyncio.to_thread(groups_everywhere, checker, keys))

            await wait_for(ready, within=20.0)
            stop.set()
            await asyncio.wait_for(running, 20)
            problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert not problems, [r.getMessage() + (r.exc_text or "") for r in problems]
    finally:
        checker.close()


def test_flush_once_processes_started_on_a_fresh_cluster_start_cleanly(
    cluster: LocalCluster, sync_cluster: Any, tmp_path: Path
) -> None:
    for start in range(STARTS):
        path = tmp_path / f"campaign-{start}.toml"
        campaign = write_campaign(path, campaign_id=f"fresh-once-{start}")
        keys = Keys(campaign.id, 16)
        settings = ledger_settings(
            tmp_path / f"once-{start}",
            None,
            redis_url=cluster.url,
            redis_cluster=True,
            campaign_path=path,
        )
        env = service_env(settings) | {"VOTESVC_REDIS_CLUSTER": "true"}
        done = subprocess.run(
            [sys.executable, "-m", "votesvc", "flush", "--once"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "flushed 0 pending votes" in done.stdout
        for word in ("ERROR", "WARNING", "Traceback"):
            assert word not in done.stderr, done.stderr
        assert groups_everywhere(sync_cluster, keys)


async def test_a_flusher_waits_for_a_cluster_it_cannot_reach_yet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="votesvc.ledger.runner")
    path = tmp_path / "campaign.toml"
    campaign = write_campaign(path, campaign_id="no-cluster-yet")
    settings = ledger_settings(
        tmp_path,
        None,
        redis_url=f"redis://127.0.0.1:{free_port()}",  # nothing listens there
        redis_cluster=True,
        campaign_path=path,
        redis_timeout=0.2,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(flush_until(settings, Keys(campaign.id, 16), campaign, stop))

    async def warned() -> bool:
        return "cannot reach the Redis Cluster" in caplog.text

    await wait_for(warned, within=10)
    assert not running.done()  # it waits (and retries), it does not crash
    stop.set()
    flusher = await asyncio.wait_for(running, 10)
    assert flusher.written == 0


async def test_a_flusher_waits_out_a_cluster_that_went_away(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Once no node answers, the cluster client raises RedisClusterException (no
    RedisError): an outage to wait out, not a failed cycle, nor a crash at stop."""
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli (Debian redis-tools) is needed to form a cluster")
    caplog.set_level(logging.WARNING, logger="votesvc")
    doomed = LocalCluster(tmp_path / "doomed")
    doomed.start()
    try:
        path = tmp_path / "campaign.toml"
        campaign = write_campaign(path, campaign_id="cluster-gone")
        keys = Keys(campaign.id, 16)
        settings = ledger_settings(
            tmp_path,
            None,
            redis_url=doomed.url,
            redis_cluster=True,
            campaign_path=path,
            flush_interval=0.05,
            redis_timeout=0.5,
        )
        await create_ledger(settings)
        stop = asyncio.Event()
        running = asyncio.create_task(flush_until(settings, keys, campaign, stop, Metrics()))
        checker = RedisCluster.from_url(doomed.url)

        async def ready() -> bool:
            return bool(await asyncio.to_thread(groups_everywhere, checker, keys))

        await wait_for(ready, within=20.0)
        checker.close()
    finally:
        doomed.stop()

    async def outage_seen() -> bool:
        return "flusher cannot reach Redis" in caplog.text

    await wait_for(outage_seen, within=20.0)
    stop.set()
    await asyncio.wait_for(running, 20)  # no RedisClusterException out of it
    as_failed_cycles = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        and r.exc_info is not None
        and isinstance(r.exc_info[1], RedisClusterException)
    ]
    assert not as_failed_cycles, [r.getMessage() + (r.exc_text or "") for r in as_failed_cycles]


async def test_a_void_whose_cluster_went_away_says_to_restore() -> None:
    """The ledger has the void; the live counters could not follow because no node
    answers (RedisClusterException, no RedisError): the caller is told to restore."""
    client = AsyncRedisCluster(host="127.0.0.1", port=free_port())
    vote = LedgerVote("v1", "N01", "ab" * 32, "cd" * 32, 0, True, "bot", "none", "")
    with pytest.raises(LiveCountersNotUpdated, match="run `votesvc restore`"):
        await take_off_live_counters(client, Keys("cluster-gone", 16), [vote])


class TornOnce:
    """A cluster client whose first script call fails as redis-py's can in an outage
    (a connection closed under the call: AttributeError), then works."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def evalsha(self, *args: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise AttributeError("'NoneType' object has no attribute 'writelines'")
        return await self._client.evalsha(*args)


async def test_the_heartbeat_beats_on_whatever_one_beat_raised(
    cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    keys = Keys("heartbeat-torn", 16)
    client = AsyncRedisCluster.from_url(cluster.url)
    torn = TornOnce(client)
    stop = asyncio.Event()
    beating = asyncio.create_task(Heartbeat(torn, keys, "torn-1", every=0.05).run(stop))  # type: ignore[arg-type]
    try:

        async def beat_recorded() -> bool:
            return bool(await client.hexists(keys.flushers(), "torn-1"))

        await wait_for(beat_recorded, within=10.0)
        assert torn.failed
        assert not beating.done()  # the failed beat did not end the heartbeat
        assert "flusher heartbeat failed (AttributeError" in caplog.text
    finally:
        stop.set()
        await beating
        await client.aclose()
