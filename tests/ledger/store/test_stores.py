"""The ledger stores, SQLite and PostgreSQL, through the same interface."""

from __future__ import annotations

import asyncio
import contextlib
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
    LedgerVote,
    Store,
    StoreError,
    StoreUnavailable,
    VoteRow,
    VoteSelection,
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
    voided = await store.void(CAMPAIGN, [row(2).vote_id], reason="x", audit=audit())
    assert voided is not None
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
    await store.void(CAMPAIGN, [row(4).vote_id], reason="fraud", audit=audit())
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


async def test_void_is_all_or_nothing_and_audits_only_a_change(store: Store) -> None:
    await store.insert_votes([row(n) for n in range(5)])
    first = await store.void(
        CAMPAIGN, [row(1).vote_id, row(2).vote_id], reason="bot", audit=audit("bot")
    )
    assert first is not None
    assert [v.vote_id for v in first] == [row(1).vote_id, row(2).vote_id]
    assert all(v.void and v.void_reason == "bot" for v in first)
    # One of them is void already, or unknown: nothing changes, no audit row.
    assert (
        await store.void(CAMPAIGN, [row(2).vote_id, row(3).vote_id], reason="x", audit=audit("x"))
        is None
    )
    assert (
        await store.void(CAMPAIGN, [row(3).vote_id, "f" * 32], reason="x", audit=audit("x")) is None
    )
    assert await store.void(CAMPAIGN, [], reason="x", audit=audit("none")) == []
    assert await store.count(CAMPAIGN, void=True) == 2
    assert [entry.reason for entry in await store.audit_log(CAMPAIGN)] == ["bot"]


async def test_a_selection_names_valid_votes_by_id_phone_or_nominee_in_a_range(
    store: Store,
) -> None:
    phone = "c" * 64
    await store.insert_votes(
        [
            *(row(n, "N01", phone=phone, at=100 * n) for n in (1, 2, 3)),
            row(4, "N02", at=200),
            row(5, "N02", phone=phone, at=250),
        ]
    )
    await store.void(CAMPAIGN, [row(3).vote_id], reason="x", audit=audit())

    def ids(votes: list[LedgerVote]) -> list[str]:
        return [v.vote_id for v in votes]

    by_phone = await store.select_valid(CAMPAIGN, VoteSelection(phone_hash=phone))
    assert ids(by_phone) == [row(1).vote_id, row(2).vote_id, row(5).vote_id]  # by time
    in_range = VoteSelection(phone_hash=phone, since=150, until=250)  # until is excluded
    assert ids(await store.select_valid(CAMPAIGN, in_range)) == [row(2).vote_id]
    by_nominee = await store.select_valid(CAMPAIGN, VoteSelection(nominee="N02", since=200))
    assert ids(by_nominee) == [row(4).vote_id, row(5).vote_id]
    named = VoteSelection(vote_ids=(row(3).vote_id, row(4).vote_id, "f" * 32, row(4).vote_id))
    assert ids(await store.select_valid(CAMPAIGN, named)) == [row(4).vote_id]
    both = VoteSelection(phone_hash=phone, nominee="N02")
    assert ids(await store.select_valid(CAMPAIGN, both)) == [row(5).vote_id]
    with pytest.raises(StoreError):
        VoteSelection(since=1)  # a time range alone would name every vote


async def test_many_ids_are_selected_voided_and_left_out_of_totals(store: Store) -> None:
    await store.insert_votes([row(n, f"N{n % 3 + 1:02d}", at=n) for n in range(1500)])
    chosen = tuple(row(n).vote_id for n in range(0, 1500, 2))
    assert len(await store.select_valid(CAMPAIGN, VoteSelection(vote_ids=chosen))) == 750
    after = {t.nominee: t.votes for t in await store.totals(CAMPAIGN, excluding=chosen)}
    assert after == {"N01": 250, "N02": 250, "N03": 250}
    assert sum(t.votes for t in await store.totals(CAMPAIGN)) == 1500  # nothing changed
    voided = await store.void(CAMPAIGN, chosen, reason="x", audit=audit())
    assert voided is not None
    assert len(voided) == 750
    assert {t.nominee: t.votes for t in await store.totals(CAMPAIGN)} == after


async def test_counts_within_a_window_and_distinct_voters(store: Store) -> None:
    phone = "d" * 64
    await store.insert_votes(
        [row(1, at=10, phone=phone), row(2, at=20, phone=phone), row(3, at=30), row(4, at=40)]
    )
    await store.void(CAMPAIGN, [row(3).vote_id], reason="x", audit=audit())
    assert await store.count(CAMPAIGN, window=(10, 30)) == 3
    assert await store.count(CAMPAIGN, window=(10, 30), void=False) == 2
    assert await store.voters(CAMPAIGN, window=(10, 30)) == 2
    assert await store.voters(CAMPAIGN, window=(0, 100)) == 3


async def test_the_audit_log_filters_by_action_actor_and_time(store: Store) -> None:
    entries = [
        AuditEntry(at=10, actor="ann", action="void", detail="{}", reason="a"),
        AuditEntry(at=20, actor="bob", action="export", detail="{}", reason=""),
        AuditEntry(at=30, actor="ann", action="signin", detail="{}", reason=""),
        AuditEntry(at=40, actor="ann", action="void", detail="{}", reason="b"),
    ]
    for entry in entries:
        await store.record_audit(CAMPAIGN, entry)
    assert await store.audit_log(CAMPAIGN) == entries
    assert await store.audit_log(CAMPAIGN, action="void") == [entries[0], entries[3]]
    assert await store.audit_log(CAMPAIGN, actor="ann", since=20) == entries[2:]
    assert await store.audit_log(CAMPAIGN, until=30) == entries[:2]
    assert await store.audit_log(CAMPAIGN, last=2) == entries[2:]  # the newest, oldest first


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
