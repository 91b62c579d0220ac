"""The ledger stores, SQLite and PostgreSQL, through the same interface."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from pathlib import Path

import asyncpg
import pytest

from tests.ledger_fixtures import _create_database, ledger_settings
from tests.pgcluster import PgCluster
from votesvc.entry import UNVERIFIED
from votesvc.ledger.store import (
    AuditEntry,
    Store,
    StoreUnavailable,
    VoteRow,
    build_store,
    ledger_exists,
    ledger_name,
)
from votesvc.ledger.store.postgres import PostgresStore
from votesvc.ledger.store.schema import MIGRATIONS
from votesvc.ledger.store.sqlite import SqliteStore
from votesvc.settings import Settings

CAMPAIGN = "test-campaign"


def row(
    n: int,
    nominee: str = "N01",
    *,
    phone: str | None = None,
    at: int | None = None,
    method: str = UNVERIFIED,
) -> VoteRow:
    return VoteRow(
        vote_id=f"{n:032x}",
        campaign=CAMPAIGN,
        nominee=nominee,
        phone_hash=phone or f"{n:064x}",
        ip_hash="ab" * 8,
        accepted_at=at if at is not None else 1_000_000 + n,
        method=method,
    )


def audit(reason: str = "test") -> AuditEntry:
    return AuditEntry(at=5, actor="tester@host", action="void", detail="{}", reason=reason)


async def test_a_redelivered_vote_changes_nothing(store: Store) -> None:
    rows = [row(n) for n in range(100)]
    assert await store.insert_votes(rows) == 100
    assert await store.insert_votes([*rows[50:], row(100)]) == 1
    assert await store.count(CAMPAIGN) == 101
    assert await store.count("other-campaign") == 0


async def test_migrations_apply_once(
    store: Store, tmp_path: Path, database_url: str | None
) -> None:
    await store.insert_votes([row(1)])
    again = build_store(ledger_settings(tmp_path, database_url))
    await again.open()  # the schema is there: nothing to apply, nothing lost
    try:
        assert await again.count(CAMPAIGN) == 1
    finally:
        await again.close()


async def test_a_vote_keeps_its_verification_method(store: Store) -> None:
    await store.insert_votes([row(1, method="partner:app12351"), row(2, method="sms"), row(3)])
    voided = await store.void(CAMPAIGN, vote_ids=[row(2).vote_id], reason="x", audit=audit())
    assert [v.method for v in voided] == ["sms"]
    stored = [(v.vote_id, v.method) async for chunk in store.votes(CAMPAIGN) for v in chunk]
    assert stored == [
        (row(1).vote_id, "partner:app12351"),
        (row(2).vote_id, "sms"),
        (row(3).vote_id, "none"),
    ]


async def run_sql(settings: Settings, sql: str) -> None:
    """Run ``sql`` on the ledger behind the stores' backs."""
    path = settings.database.path
    if path is not None:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute(sql)
            conn.commit()
        return
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_the_method_migration_gives_the_earlier_votes_none(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ledger_settings(tmp_path, database_url)
    with monkeypatch.context() as patch:  # a ledger of the release before the method
        earlier = tuple(m for m in MIGRATIONS if m.version < 3)
        patch.setattr("votesvc.ledger.store.sqlite.MIGRATIONS", earlier)
        patch.setattr("votesvc.ledger.store.postgres.MIGRATIONS", earlier)
        ledger = build_store(settings)
        await ledger.open()
        await ledger.close()
    old = row(1)
    await run_sql(
        settings,
        "INSERT INTO votes (vote_id, campaign, nominee, phone_hash, ip_hash, accepted_at)"
        f" VALUES ('{old.vote_id}', '{CAMPAIGN}', 'N01', '{old.phone_hash}', '{old.ip_hash}',"
        f" {old.accepted_at})",
    )
    ledger = build_store(settings)
    await ledger.open()  # applies migration 3
    try:
        await ledger.insert_votes([row(2, method="partner:app12351")])
        stored = [(v.vote_id, v.method) async for chunk in ledger.votes(CAMPAIGN) for v in chunk]
        assert stored == [(old.vote_id, "none"), (row(2).vote_id, "partner:app12351")]
    finally:
        await ledger.close()


async def test_totals_count_valid_votes_and_the_time_of_the_last(store: Store) -> None:
    await store.insert_votes(
        [row(1, "N01", at=10), row(2, "N01", at=30), row(3, "N02", at=20), row(4, "N02", at=40)]
    )
    await store.void(CAMPAIGN, vote_ids=[row(4).vote_id], reason="fraud", audit=audit())
    totals = {t.nominee: (t.votes, t.reached_at) for t in await store.totals(CAMPAIGN)}
    assert totals == {"N01": (2, 30), "N02": (1, 20)}
    assert await store.count(CAMPAIGN, void=True) == 1
    assert await store.count(CAMPAIGN, void=False) == 3


async def test_totals_within_a_window_count_only_votes_inside_it(store: Store) -> None:
    await store.insert_votes(
        [row(1, "N01", at=9), row(2, "N01", at=10), row(3, "N02", at=30), row(4, "N02", at=31)]
    )
    totals = {
        t.nominee: (t.votes, t.reached_at) for t in await store.totals(CAMPAIGN, window=(10, 30))
    }
    assert totals == {"N01": (1, 10), "N02": (1, 30)}  # both ends belong to the window


async def test_void_by_id_returns_only_what_it_voided_and_audits(store: Store) -> None:
    await store.insert_votes([row(n) for n in range(5)])
    ids = [row(1).vote_id, row(2).vote_id, "f" * 32]
    first = await store.void(CAMPAIGN, vote_ids=ids, reason="bot", audit=audit("bot"))
    assert sorted(v.vote_id for v in first) == sorted(ids[:2])
    assert all(v.void and v.void_reason == "bot" for v in first)
    second = await store.void(CAMPAIGN, vote_ids=ids, reason="bot", audit=audit("again"))
    assert second == []
    log = await store.audit_log(CAMPAIGN)
    assert [entry.reason for entry in log] == ["bot"]  # no audit row for a void of nothing
    assert set(json.loads(log[0].detail)["voided"]) == set(ids[:2])
    assert json.loads(log[0].detail)["count"] == 2
    assert await store.existing_ids(CAMPAIGN, ids) == set(ids[:2])


async def test_void_by_phone_within_a_window(store: Store) -> None:
    phone = "c" * 64
    await store.insert_votes(
        [*(row(n, phone=phone, at=100 * n) for n in (1, 2, 3)), row(4, at=200)]
    )
    voided = await store.void(
        CAMPAIGN, phone_hash=phone, since=150, until=300, reason="sim farm", audit=audit()
    )
    assert [v.vote_id for v in voided] == [row(2).vote_id]
    everything = await store.void(CAMPAIGN, phone_hash=phone, reason="all", audit=audit())
    assert sorted(v.vote_id for v in everything) == [row(1).vote_id, row(3).vote_id]


async def test_an_audit_row_is_appended_as_given(store: Store) -> None:
    entry = AuditEntry(at=7, actor="ops@host", action="export", detail='{"rows": 3}', reason="")
    await store.record_audit(CAMPAIGN, entry)
    await store.record_audit("other-campaign", audit())
    assert await store.audit_log(CAMPAIGN) == [entry]


async def test_whether_a_ledger_exists_is_asked_without_creating_one(
    tmp_path: Path, database_url: str | None
) -> None:
    settings = ledger_settings(tmp_path / "data", database_url)
    assert not await ledger_exists(settings.database)
    assert not (tmp_path / "data").exists()
    assert not await ledger_exists(settings.database)  # asking made nothing either
    ledger = build_store(settings)
    await ledger.open()
    await ledger.close()
    assert await ledger_exists(settings.database)


def test_a_ledger_is_named_by_its_absolute_path_or_its_url_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert ledger_name(ledger_settings(Path("var"), None).database) == (
        f"sqlite:///{tmp_path}/var/ledger.sqlite3"
    )
    named = {
        "postgresql://vote:s3cret@db.internal:5433/votes": "postgresql://vote@db.internal:5433/votes",
        "postgresql://vote@db/votes?password=s3cret&sslmode=require": (
            "postgresql://vote@db/votes?sslmode=require"
        ),
        "postgres://db/votes": "postgres://db/votes",
    }
    for url, name in named.items():
        assert ledger_name(ledger_settings(tmp_path, url).database) == name


async def test_votes_are_walked_in_time_order_in_chunks(store: Store) -> None:
    await store.insert_votes([row(n, at=20_000 - n) for n in range(12_000)])
    seen = []
    async for chunk in store.votes(CAMPAIGN):
        assert 0 < len(chunk) <= 5000
        seen += chunk
    assert len(seen) == 12_000
    assert [v.accepted_at for v in seen] == sorted(v.accepted_at for v in seen)
    recent = [v async for chunk in store.votes(CAMPAIGN, since=19_990) for v in chunk]
    assert len(recent) == 11


async def test_snapshots_keep_the_history(store: Store) -> None:
    await store.insert_snapshot(CAMPAIGN, {"N01": 3, "N02": 1}, 1000)
    await store.insert_snapshot(CAMPAIGN, {"N01": 4, "N02": 1}, 2000)
    await store.insert_snapshot(CAMPAIGN, {"N01": 4, "N02": 1}, 2000)  # twice: one row each
    assert await store.snapshots(CAMPAIGN) == [
        (1000, {"N01": 3, "N02": 1}),
        (2000, {"N01": 4, "N02": 1}),
    ]


async def test_a_sqlite_file_that_cannot_be_created_is_unavailable_in_one_line(
    tmp_path: Path,
) -> None:
    store = build_store(ledger_settings(tmp_path, "sqlite:////proc/nope/x.db"))
    assert isinstance(store, SqliteStore)
    assert store.path == Path("/proc/nope/x.db")
    with pytest.raises(StoreUnavailable) as raised:
        await store.open()
    assert str(raised.value) == "SQLite /proc/nope/x.db: /proc/nope: No such file or directory"
    await store.close()


@pytest.mark.postgres
async def test_a_postgres_outage_is_reported_by_us_only(
    pg_cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = PostgresStore(await _create_database(pg_cluster))
    await store.open()
    assert await store.insert_votes([row(1)]) == 1
    pg_cluster.stop()
    try:
        failures, until = 0, time.monotonic() + 1.5
        while failures < 5 or time.monotonic() < until:  # the flusher's retries, paced
            with pytest.raises(StoreUnavailable):
                await store.insert_votes([row(2)])
            failures += 1
            await asyncio.sleep(0.1)
    finally:
        pg_cluster.start()
    assert await store.insert_votes([row(2)]) == 1  # the same pool connects again
    await store.close()
    # No driver traceback or "exception never retrieved" beside the flusher's own warning.
    noisy = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.name.startswith("asyncpg") or r.name == "asyncio" or r.exc_info
    ]
    assert noisy == []
