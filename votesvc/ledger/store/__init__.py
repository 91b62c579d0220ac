"""Durable storage for the vote ledger: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from votesvc.ledger.store.base import (
    AuditEntry,
    LedgerVote,
    NomineeTotal,
    Store,
    StoreError,
    StoreUnavailable,
    VoteRow,
)
from votesvc.settings import Settings

__all__ = [
    "AuditEntry",
    "LedgerVote",
    "NomineeTotal",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "VoteRow",
    "build_store",
]


def build_store(settings: Settings) -> Store:
    """The store ``settings`` name (not opened yet: call ``open()``)."""
    database = settings.database
    if database.kind == "postgresql":
        from votesvc.ledger.store.postgres import PostgresStore

        assert database.url is not None
        return PostgresStore(database.url)
    from votesvc.ledger.store.sqlite import SqliteStore

    assert database.path is not None
    return SqliteStore(database.path)
