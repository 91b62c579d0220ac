"""The ledger flusher: streams -> store, idempotent, claiming, outages, snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.ledger_fixtures import ledger_settings
from tests.ledger_support import prefill_streams
from tests.pgcluster import PgCluster
from tests.support import SECRET, FakeClock, make_campaign, phone, running_service, wait_for
from votesvc.entry import VoteEntry
from votesvc.keys import Keys
from votesvc.ledger.flusher import GROUP, Flusher
from votesvc.ledger.reconcile import reconcile
from votesvc.ledger.store import Store, build_store
from votesvc.ledger.store.sqlite import SqliteStore
from votesvc.meta import write_markers
from votesvc.phones import hash_phone
from votesvc.processes import pid_scope
from votesvc.redis_server import EmbeddedRedis
from votesvc.scripts import register_scripts
from votesvc.settings import Settings
from votesvc.votes import ACCEPTED, VoteCaster

CAMPAIGN = "test-campaign"


@pytest.fixture
def keys() -> Keys:
    return Keys(CAMPAIGN, 16)


async def pending_total(redis: Any, keys: Keys) -> int:
    """Entries read but not acknowledged, over every shard (the groups must exist)."""
    total = 0
    for stream in keys.streams():
        total += (await redis.xpending(stream, GROUP))["pending"]
    return total


async def stream_total(redis: Any, keys: Keys) -> int:
    return sum([await redis.xlen(stream) for stream in keys.streams()])


async def test_accepted_votes_are_in_the_ledger_within_a_flush_interval(
    redis: aioredis.Redis,
    redis_server: EmbeddedRedis,
    tmp_path: Path,
    database_url: str | None,
    store: Store,
) -> None:
    interval = 0.3
    async with running_service(
        redis_server.url,
        tmp_path,
        flush_in_serve=True,
        flush_interval=interval,
        snapshot_interval=interval,
        database_url=database_url,
    ) as service:
        responses = await asyncio.gather(
            *(service.vote(f"N{n % 7 + 1:02d}", phone(n)) for n in range(120))
        )
        assert [r.status_code for r in responses] == [201] * 120
        ids = [r.json()["vote_id"] for r in responses]

        async def all_durable() -> bool:
            return await store.count(CAMPAIGN) == 120

        await wait_for(all_durable, within=2 * interval + 2.0)
        assert await store.existing_ids(CAMPAIGN, ids) == set(ids)
        live = {row["id"]: row["votes"] for row in (await service.fresh_tally())["nominees"]}
        durable = {t.nominee: t.votes for t in await store.totals(CAMPAIGN)}
        assert durable == {nominee: votes for nominee, votes in live.items() if votes}
        assert (await reconcile(redis, service.app.state.keys, store)).clean
        assert await stream_total(redis, service.app.state.keys) == 0

        async def snapshot_taken() -> bool:
            history = await store.snapshots(CAMPAIGN)
            return bool(history) and history[-1][1] == durable

        await wait_for(snapshot_taken, within=3 * interval + 2.0)


def flusher_for(
    redis: Any, store: Store, keys: Keys, consumer: str = "test-flusher", **settings: Any
) -> Flusher:
    """A flusher of ``settings`` (``flush_interval`` 0.1 unless given)."""
    settings.setdefault("flush_interval", 0.1)
    return Flusher(redis, store, keys, Settings(**settings), consumer=consumer)


async def test_stale_entries_of_a_vanished_consumer_are_claimed_once(
    redis: aioredis.Redis, store: Store, keys: Keys
) -> None:
    counts = await prefill_streams(redis, keys, 800)
    flusher = flusher_for(redis, store, keys, flush_claim_after=0.3, flush_batch=1600)
    await flusher.ensure_groups()
    # A flusher on another host read some entries, then vanished before writing them.
    for stream in keys.streams():
        await redis.xreadgroup(GROUP, "otherhost-4242", {stream: ">"}, count=10)
    stolen = await pending_total(redis, keys)
    assert stolen > 0
    await flusher.step()
    assert await store.count(CAMPAIGN) == 800 - stolen  # not yet stale: left alone

    async def claimed() -> bool:
        await flusher.step()
        return await store.count(CAMPAIGN) == 800

    await wait_for(claimed, within=5.0)
    assert await pending_total(redis, keys) == 0
    assert await stream_total(redis, keys) == 0
    assert {t.nominee: t.votes for t in await store.totals(CAMPAIGN)} == counts


def ended_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    ended = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    return int(ended.stdout)


OTHER_SCOPE = "0123456789ab"  # another pid namespace (a container sharing this hostname)


def consumer_of(pid: int, scope: str | None) -> str:
    """The consumer name a flusher of pid ``pid`` in ``scope`` takes; None: a name before scopes."""
    host = socket.gethostname()
    return f"{host}-{pid}" if scope is None else f"{host}-{pid}-0badcafe@{scope}"


async def test_a_dead_consumer_of_this_pid_namespace_is_taken_over_at_once(
    redis: aioredis.Redis, store: Store, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="votesvc.ledger.flusher")
    await prefill_streams(redis, keys, 300)
    assert pid_scope() is not None
    assert pid_scope() != OTHER_SCOPE
    dead = consumer_of(ended_pid(), pid_scope())
    flusher = flusher_for(redis, store, keys, flush_claim_after=3600)
    await flusher.ensure_groups()
    for stream in keys.streams():
        await redis.xreadgroup(GROUP, dead, {stream: ">"})
    assert await pending_total(redis, keys) == 300
    await flusher.step()
    assert await store.count(CAMPAIGN) == 300
    assert await pending_total(redis, keys) == 0
    consumers = await redis.xinfo_consumers(keys.stream(0), GROUP)
    assert dead.encode() not in {c["name"] for c in consumers}
    # One line for the dead consumer, with the total over every shard.
    took_over = [r.getMessage() for r in caplog.records if "took over" in r.getMessage()]
    assert took_over == [
        f"flusher test-flusher took over 300 pending votes from dead consumer {dead}"
    ]


@pytest.mark.parametrize(
    "scope", [OTHER_SCOPE, None], ids=["another-pid-namespace", "name-from-before-scopes"]
)
async def test_a_consumer_whose_pid_means_nothing_here_waits_for_claim_after(
    redis: aioredis.Redis, store: Store, keys: Keys, scope: str | None
) -> None:
    # Same hostname, and its pid has no process here: it may still run in its own namespace.
    await prefill_streams(redis, keys, 300)
    elsewhere = consumer_of(ended_pid(), scope)
    flusher = flusher_for(redis, store, keys, flush_claim_after=0.5)
    await flusher.ensure_groups()
    for stream in keys.streams():
        await redis.xreadgroup(GROUP, elsewhere, {stream: ">"})
    await flusher.step()
    assert await store.count(CAMPAIGN) == 0  # not taken over at once
    assert await pending_total(redis, keys) == 300

    async def claimed() -> bool:
        await flusher.step()
        return await store.count(CAMPAIGN) == 300

    await wait_for(claimed, within=5.0)  # like a consumer of another host
    assert await pending_total(redis, keys) == 0


async def test_a_redelivered_batch_changes_nothing(
    redis: aioredis.Redis, store: Store, keys: Keys
) -> None:
    await prefill_streams(redis, keys, 200)
    entries: dict[str, Any] = {s: await redis.xrange(s) for s in keys.streams()}
    flusher = flusher_for(redis, store, keys)
    await flusher.step()
    assert await store.count(CAMPAIGN) == 200
    # The same entries appear again (a flusher died after writing, before its XACK).
    for stream, items in entries.items():
        for _, fields in items:
            await redis.xadd(stream, fields)
    await flusher.step()
    assert await store.count(CAMPAIGN) == 200
    assert flusher.written == 200
    assert await stream_total(redis, keys) == 0


async def test_each_vote_reaches_the_ledger_with_its_verification_method(
    redis: aioredis.Redis, store: Store, keys: Keys
) -> None:
    campaign = make_campaign(campaign_id=CAMPAIGN)
    caster = VoteCaster(redis, campaign, keys, FakeClock(), Settings(shards=keys.shards))
    await register_scripts(redis)
    await write_markers(redis, keys)
    nominee = campaign.nominee("N01")
    assert nominee is not None
    cast = await asyncio.gather(
        caster.cast(nominee, hash_phone(SECRET, phone(1)), "0" * 16, "", "partner:app12351"),
        caster.cast(nominee, hash_phone(SECRET, phone(2)), "0" * 16, "click-2", "sms"),
        caster.cast(nominee, hash_phone(SECRET, phone(3)), "0" * 16),
    )
    assert [status for status, _, _ in cast] == [ACCEPTED] * 3
    # An entry the previous release wrote, without a method, still in a stream.
    old = VoteEntry("ab" * 16, 1_780_000_000_000, "N02", hash_phone(SECRET, phone(4)), "0" * 16)
    fields: dict[Any, Any] = old.fields()
    del fields["m"]
    await redis.xadd(keys.stream(keys.shard_of(old.phone_hash)), fields)

    await flusher_for(redis, store, keys).step()
    stored = {vote.vote_id: vote.method async for chunk in store.votes(CAMPAIGN) for vote in chunk}
    assert stored == {
        cast[0][2]: "partner:app12351",
        cast[1][2]: "sms",
        cast[2][2]: "none",
        old.vote_id: "none",
    }


async def test_a_malformed_entry_is_logged_skipped_and_acknowledged(
    redis: aioredis.Redis, store: Store, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    await prefill_streams(redis, keys, 20)
    await redis.xadd(keys.stream(3), {"id": "ab" * 16, "n": "N01"})  # no ts, phone or ip
    flusher = flusher_for(redis, store, keys)
    with caplog.at_level(logging.ERROR, logger="votesvc.ledger.entries"):
        await flusher.step()
    assert await store.count(CAMPAIGN) == 20
    assert "skipping a malformed stream entry" in caplog.text
    # acknowledged and trimmed with the rest: not read again on every cycle
    assert await pending_total(redis, keys) == 0
    assert await stream_total(redis, keys) == 0


async def test_the_flusher_recreates_its_groups_after_redis_lost_them(
    redis: aioredis.Redis, store: Store, keys: Keys
) -> None:
    flusher = flusher_for(redis, store, keys)
    await flusher.step()
    await redis.flushall()
    await prefill_streams(redis, keys, 50)
    await flusher.step()  # NOGROUP: groups come back, from the start of each stream
    await flusher.step()
    assert await store.count(CAMPAIGN) == 50


@contextlib.asynccontextmanager
async def running_flusher(flusher: Flusher) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(flusher.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


@contextlib.contextmanager
def database_outage(database_url: str | None, tmp_path: Path, request: Any) -> Iterator[None]:
    """The ledger database cannot be written while the block runs."""
    if database_url is None:
        # As root no file mode stops a write: another connection's exclusive lock does.
        blocker = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    else:
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        cluster.stop()
        try:
            yield
        finally:
            cluster.start()


async def test_database_outage_holds_votes_in_redis_until_it_is_back(
    redis: aioredis.Redis,
    redis_server: EmbeddedRedis,
    tmp_path: Path,
    database_url: str | None,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    interval = 0.3
    settings = ledger_settings(tmp_path, database_url)
    ledger = (
        SqliteStore(tmp_path / "ledger.sqlite3", busy_timeout=0.05)
        if database_url is None
        else build_store(settings)
    )
    check = build_store(settings)
    await check.open()
    caplog.set_level(logging.INFO, logger="votesvc.ledger.flusher")
    async with running_service(redis_server.url, tmp_path / "api") as service:
        keys = service.app.state.keys
        flusher = flusher_for(redis, ledger, keys, flush_interval=interval)
        async with running_flusher(flusher):
            assert (await service.vote("N01", phone(0))).status_code == 201

            async def flushed(n: int) -> bool:
                return await check.count(CAMPAIGN) == n

            await wait_for(lambda: flushed(1), within=2 * interval + 2.0)
            with database_outage(database_url, tmp_path, request):
                responses = [await service.vote("N02", phone(n)) for n in range(1, 51)]
                assert [r.status_code for r in responses] == [201] * 50

                async def complained() -> bool:
                    return "ledger write failed" in caplog.text

                await wait_for(complained, within=5.0)
                assert await stream_total(redis, keys) == 50  # held in Redis, none dropped
            await check.close()
            await check.open()  # a fresh pool: the old one saw the server go away
            await wait_for(lambda: flushed(51), within=2 * interval + 2.0)
            assert "ledger writable again" in caplog.text
    # The flusher's throttled warning is the one report: no driver tracebacks beside it.
    assert [r.name for r in caplog.records if r.exc_info or not r.name.startswith("votesvc")] == []
    await check.close()
    await ledger.close()


async def test_a_ledger_file_that_cannot_be_created_is_an_outage_not_a_crash(
    redis: aioredis.Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await prefill_streams(redis, keys, 10)
    flusher = flusher_for(
        redis, SqliteStore(Path("/proc/nope/ledger.db")), keys, flush_interval=0.05
    )
    async with running_flusher(flusher):

        async def complained() -> bool:
            return "ledger database unavailable at start" in caplog.text

        await wait_for(complained, within=5.0)
        first = int(await redis.hget(keys.flushers(), "test-flusher") or 0)

        async def retried_a_while() -> bool:  # at least 6 retries at the 0.05 s backoff cap
            return int(await redis.hget(keys.flushers(), "test-flusher") or 0) >= first + 300

        await wait_for(retried_a_while, within=5.0)
    await flusher.store.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "ledger database unavailable at start (SQLite /proc/nope/ledger.db: /proc/nope: "
        "No such file or directory); retrying"
    ]
    assert warnings[0].exc_info is None
    assert await stream_total(redis, keys) == 10  # held in Redis
