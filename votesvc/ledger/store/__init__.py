"""Durable storage for the vote ledger: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from votesvc.ledger.store.base import (
    AuditEntry,
    Certification,
    LedgerVote,
    NomineeTotal,
    ResultCertified,
    Store,
    StoreError,
    StoreUnavailable,
    VoteRow,
    VoteSelection,
)
from votesvc.settings import Database, Settings

__all__ = [
    "AuditEntry",
    "Certification",
    "LedgerVote",
    "NomineeTotal",
    "ResultCertified",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "VoteRow",
    "VoteSelection",
    "build_store",
    "ledger_exists",
    "ledger_name",
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


def ledger_name(database: Database) -> str:
    """The ledger as a URL to show: the SQLite file's absolute path, or the
    PostgreSQL URL without its password."""
    if database.kind == "postgresql":
        from votesvc.ledger.store.postgres import public_url

        assert database.url is not None
        return public_url(database.url)
    assert database.path is not None
    return f"sqlite:///{database.path.absolute()}"


async def ledger_exists(database: Database) -> bool:
    """Whether a ledger is there, creating nothing: the SQLite file exists, or the
    PostgreSQL database has its ``schema_migrations`` table. Raises StoreUnavailable."""
    if database.kind == "postgresql":
        from votesvc.ledger.store.postgres import schema_present

        assert database.url is not None
        return await schema_present(database.url)
    assert database.path is not None
    return database.path.is_file()
