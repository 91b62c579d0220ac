"""The ledger schema: numbered migrations, applied in order at start-up.

One schema for both stores; where the SQL dialects differ a migration gives
each its own text. A store records the versions it applied in
``schema_migrations`` and runs the missing ones, each in its own transaction.
Never edit a released migration: add the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]

    def statements(self, dialect: str) -> tuple[str, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgres


# accepted_at / taken_at / at: UTC epoch milliseconds (BIGINT), the vote path's own stamps.
_VOTES = """
CREATE TABLE votes (
    vote_id     TEXT PRIMARY KEY,
    campaign    TEXT NOT NULL,
    nominee     TEXT NOT NULL,
    phone_hash  TEXT NOT NULL,
    ip_hash     TEXT NOT NULL,
    accepted_at BIGINT NOT NULL,
    void        BOOLEAN NOT NULL DEFAULT FALSE,
    void_reason TEXT
)"""

_SNAPSHOTS = """
CREATE TABLE tally_snapshots (
    campaign TEXT NOT NULL,
    taken_at BIGINT NOT NULL,
    nominee  TEXT NOT NULL,
    votes    BIGINT NOT NULL,
    PRIMARY KEY (campaign, taken_at, nominee)
)"""

_AUDIT_COLUMNS = """
    campaign TEXT NOT NULL,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    detail   TEXT NOT NULL,
    reason   TEXT NOT NULL
)"""

# The campaign's lifelong settings (votesvc.meta): codes is the JSON map nominee id -> code.
_CAMPAIGN_META = """
CREATE TABLE campaign_meta (
    campaign           TEXT PRIMARY KEY,
    codes              TEXT NOT NULL,
    shards             INTEGER NOT NULL,
    secret_fingerprint TEXT NOT NULL
)"""

# How the voter was verified: none, sms or partner:<id> (votesvc.entry, field m).
_VOTE_METHOD = "ALTER TABLE votes ADD COLUMN method TEXT NOT NULL DEFAULT 'none'"

# The organisers' console (votesvc.admin). Accounts belong to the ledger, not to one
# campaign; a password is kept only as its argon2 hash (the PHC string).
_ADMIN_ACCOUNTS = """
CREATE TABLE admin_accounts (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    signed_in_at  BIGINT
)"""

# A session is known by the SHA-256 of its cookie's token: the table alone opens none.
_ADMIN_SESSIONS = """
CREATE TABLE admin_sessions (
    token_hash TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
)"""

# Wrong passwords per account and client network prefix (a keyed hash, never the address).
_ADMIN_FAILURES = """
CREATE TABLE admin_signin_failures (
    account TEXT NOT NULL,
    prefix  TEXT NOT NULL,
    at      BIGINT NOT NULL
)"""

_ADMIN_INDEXES = (
    "CREATE INDEX admin_sessions_account ON admin_sessions (account)",
    "CREATE INDEX admin_signin_failures_by ON admin_signin_failures (account, prefix, at)",
)

# Where a vote came from: the keyed hash of its client's network prefix (IPv4 /24,
# IPv6 /48; votesvc.entry, field px), never the address. '' for votes stored before it.
_VOTE_PREFIX = "ALTER TABLE votes ADD COLUMN prefix_hash TEXT NOT NULL DEFAULT ''"

# A certified result (votesvc.ledger.certify): one row per campaign, never changed;
# while it exists the campaign's votes are frozen. result is the published JSON.
_CERTIFICATIONS = """
CREATE TABLE certifications (
    campaign      TEXT PRIMARY KEY,
    certified_at  BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    votes         BIGINT NOT NULL,
    void          BIGINT NOT NULL,
    export_sha256 TEXT NOT NULL,
    result        TEXT NOT NULL
)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "votes, tally snapshots, audit log",
        sqlite=(
            # WITHOUT ROWID: the rows live in the vote-id B-tree, one tree per insert.
            _VOTES + " WITHOUT ROWID",
            _SNAPSHOTS + " WITHOUT ROWID",
            "CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT," + _AUDIT_COLUMNS,
        ),
        postgres=(
            _VOTES,
            _SNAPSHOTS,
            "CREATE TABLE audit_log (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            + _AUDIT_COLUMNS,
        ),
    ),
    Migration(
        2,
        "campaign meta: nominee codes, shards, secret fingerprint",
        sqlite=(_CAMPAIGN_META,),
        postgres=(_CAMPAIGN_META,),
    ),
    Migration(
        3,
        "votes: verification method",
        # Votes stored before it were unverified. A constant default: neither
        # database rewrites the table's rows to add the column.
        sqlite=(_VOTE_METHOD,),
        postgres=(_VOTE_METHOD,),
    ),
    Migration(
        4,
        "organisers' console: accounts, sessions, sign-in failures",
        sqlite=(
            _ADMIN_ACCOUNTS + " WITHOUT ROWID",
            _ADMIN_SESSIONS + " WITHOUT ROWID",
            _ADMIN_FAILURES,
            *_ADMIN_INDEXES,
        ),
        postgres=(_ADMIN_ACCOUNTS, _ADMIN_SESSIONS, _ADMIN_FAILURES, *_ADMIN_INDEXES),
    ),
    Migration(
        5,
        "votes: network prefix hash; certified results",
        # A constant default, as in migration 3: no rewrite of the rows.
        sqlite=(_VOTE_PREFIX, _CERTIFICATIONS + " WITHOUT ROWID"),
        postgres=(_VOTE_PREFIX, _CERTIFICATIONS),
    ),
)
