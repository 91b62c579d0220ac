"""Durable storage for the vote ledger: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from votesvc.errors import ConfigError
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

SQLITE_FILE = "ledger.sqlite3"


def build_store(settings: Settings) -> Store:
    """The store ``settings`` name (not opened yet: call ``open()``)."""
    url = settings.database_url
    if url is None:
        from votesvc.ledger.store.sqlite import SqliteStore

        return SqliteStore(settings.data_dir / SQLITE_FILE)
    scheme, _, rest = url.partition("://")
    if scheme.lower() in ("postgresql", "postgres"):
        from votesvc.ledger.store.postgres import PostgresStore

        return PostgresStore(url)
    if scheme.lower() == "sqlite" and rest.startswith("/") and rest != "/":
        from pathlib import Path

        from votesvc.ledger.store.sqlite import SqliteStore

        return SqliteStore(Path(rest[1:]))  # sqlite:///rel/path, sqlite:////abs/path
    raise ConfigError(f"VOTESVC_DATABASE_URL={url!r}: expected postgresql://... or sqlite:///PATH")
