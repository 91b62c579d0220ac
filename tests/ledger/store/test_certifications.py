"""Migration 5: each vote's network prefix (a keyed hash), and the certified result
that freezes a campaign's votes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledger.store.test_stores import CAMPAIGN, audit, row, run_sql
from tests.ledger_fixtures import ledger_settings
from votesvc.ledger.store import (
    AuditEntry,
    Certification,
    ResultCertified,
    Store,
    VoteRow,
    VoteSelection,
    build_store,
)
from votesvc.ledger.store.schema import MIGRATIONS


def from_prefix(n: int, prefix: str, nominee: str = "N01") -> VoteRow:
    return row(n, nominee)._replace(prefix_hash=prefix)


def certification(votes: int, void: int = 0) -> Certification:
    return Certification(
        certified_at=7,
        actor="ann",
        votes=votes,
        void=void,
        export_sha256="e" * 64,
        result='{"certified": true}',
    )


def certify_audit() -> AuditEntry:
    return AuditEntry(at=7, actor="ann", action="certify", detail="{}", reason="")


async def test_a_vote_keeps_its_prefix_and_a_selection_names_prefixes(store: Store) -> None:
    await store.insert_votes(
        [from_prefix(1, "a" * 16), from_prefix(2, "b" * 16), from_prefix(3, "a" * 16, "N02")]
    )
    await store.insert_votes([row(4)])  # no prefix known
    stored = {v.vote_id: v.prefix_hash async for chunk in store.votes(CAMPAIGN) for v in chunk}
    assert stored == {
        row(1).vote_id: "a" * 16,
        row(2).vote_id: "b" * 16,
        row(3).vote_id: "a" * 16,
        row(4).vote_id: "",
    }
    chosen = await store.select_valid(CAMPAIGN, VoteSelection(prefixes=("a" * 16,)))
    assert [v.vote_id for v in chosen] == [row(1).vote_id, row(3).vote_id]
    chosen = await store.select_valid(
        CAMPAIGN, VoteSelection(prefixes=("a" * 16, "b" * 16), nominee="N01")
    )
    assert [(v.vote_id, v.prefix_hash) for v in chosen] == [
        (row(1).vote_id, "a" * 16),
        (row(2).vote_id, "b" * 16),
    ]
    assert VoteSelection(prefixes=("a" * 16,)).criteria() == {
        "prefixes": ["a" * 16],
        "since": None,
        "until": None,
    }


async def test_the_prefix_migration_gives_the_earlier_votes_none(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ledger_settings(tmp_path, database_url)
    with monkeypatch.context() as patch:  # a ledger of the release before migration 5
        earlier = tuple(m for m in MIGRATIONS if m.version < 5)
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
    await ledger.open()  # applies migration 5
    try:
        await ledger.insert_votes([from_prefix(2, "c" * 16)])
        stored = [(v.vote_id, v.prefix_hash) async for c in ledger.votes(CAMPAIGN) for v in c]
        assert stored == [(old.vote_id, ""), (row(2).vote_id, "c" * 16)]
        assert await ledger.certification(CAMPAIGN) is None
    finally:
        await ledger.close()


async def test_a_certified_result_freezes_the_votes(store: Store) -> None:
    await store.insert_votes([row(n) for n in range(4)])
    await store.void(CAMPAIGN, [row(0).vote_id], reason="dup", audit=audit())
    assert await store.certification(CAMPAIGN) is None
    # Counted before a void that came in between: nothing is written.
    assert not await store.certify(CAMPAIGN, certification(4, 0), audit=certify_audit())
    assert await store.certification(CAMPAIGN) is None
    assert await store.certify(CAMPAIGN, certification(4, 1), audit=certify_audit())
    assert await store.certification(CAMPAIGN) == certification(4, 1)
    assert [e.action for e in await store.audit_log(CAMPAIGN)] == ["void", "certify"]

    with pytest.raises(ResultCertified):
        await store.void(CAMPAIGN, [row(1).vote_id], reason="late", audit=audit())
    with pytest.raises(ResultCertified):
        await store.certify(CAMPAIGN, certification(4, 1), audit=certify_audit())
    assert await store.count(CAMPAIGN, void=True) == 1  # nothing changed
    assert [e.action for e in await store.audit_log(CAMPAIGN)] == ["void", "certify"]
    # Another campaign of the same ledger is not frozen.
    await store.insert_votes([row(9)._replace(campaign="other")])
    assert await store.void("other", [row(9).vote_id], reason="x", audit=audit()) is not None
