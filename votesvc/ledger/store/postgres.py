"""The PostgreSQL ledger (``VOTESVC_DATABASE_URL=postgresql://...``), via asyncpg.

A batch is copied (``COPY``, binary) into a per-connection temporary table and
moved into ``votes`` with ``INSERT ... ON CONFLICT DO NOTHING`` in the same
transaction: the fastest bulk path that still ignores re-delivered votes.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from votesvc.ledger.store.base import (
    ALL_TIME,
    AuditEntry,
    Certification,
    LedgerVote,
    NomineeTotal,
    ResultCertified,
    StoreUnavailable,
    VoteRow,
    VoteSelection,
)
from votesvc.ledger.store.schema import MIGRATIONS
from votesvc.meta import CampaignMeta

__all__ = ["PostgresStore", "public_url", "schema_present"]

_COLUMNS = VoteRow._fields  # votes_in's, in the order a row holds them
_CHUNK = 5000
_VOTE_COLUMNS = (
    "vote_id, nominee, phone_hash, ip_hash, accepted_at, void, void_reason, method, prefix_hash"
)
_CERTIFICATION = "certified_at, actor, votes, void, export_sha256, result"
# A void and a certification of one campaign take this lock (with the campaign's
# hashtext as the second key) for their transaction: one waits for the other.
_FREEZE_LOCK = 0x66726565
_MIGRATION_LOCK = 0x766F746573  # pg_advisory_xact_lock key: one migrator at a time
# What asyncpg raises when the server is gone, restarting or refusing. That
# includes InternalClientError: a connection that broke mid-query fails its
# reset on release with it ("cannot switch to state ..."); asyncpg has closed
# that connection by then, and the next acquire makes a new one.
_DOWN = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


class _Changed(Exception):
    """Inside a transaction: roll it back, the votes are not as expected."""


async def _prepare_connection(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS votes_in (vote_id TEXT, campaign TEXT, nominee TEXT,"
        " phone_hash TEXT, ip_hash TEXT, accepted_at BIGINT, method TEXT, prefix_hash TEXT)"
        " ON COMMIT DELETE ROWS"
    )


class PostgresStore:
    """The ledger in the PostgreSQL database at ``dsn``."""

    name = "postgres"

    def __init__(self, dsn: str, *, pool_size: int = 4, connect_timeout: float = 5.0) -> None:
        self.dsn = dsn
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        if self._pool is None:
            try:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    # No connection floor: a pool with one reconnects in the background
                    # while the server is down and logs a traceback each try (asyncpg >=
                    # 0.32), next to the flusher's own throttled warning. Without it a
                    # connection is made when one is needed, and a failure reaches the
                    # caller as StoreUnavailable, only.
                    min_size=0,
                    max_size=self._pool_size,
                    init=_prepare_connection,
                    timeout=self._connect_timeout,
                    command_timeout=60,
                )
            except _DOWN as exc:
                raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await _migrate(conn)
        except _DOWN as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _require(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        return self._pool

    async def insert_votes(self, rows: Sequence[VoteRow]) -> int:
        try:
            async with self._require().acquire() as conn, conn.transaction():
                await conn.copy_records_to_table("votes_in", records=rows, columns=_COLUMNS)
                status = await conn.execute(
                    "INSERT INTO votes (vote_id, campaign, nominee, phone_hash, ip_hash,"
                    " accepted_at, method, prefix_hash) SELECT vote_id, campaign, nominee,"
                    " phone_hash, ip_hash, accepted_at, method, prefix_hash FROM votes_in"
                    " ON CONFLICT (vote_id) DO NOTHING"
                )
        except _DOWN as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
        return int(status.rsplit(" ", 1)[-1])

    async def insert_snapshot(self, campaign: str, counts: dict[str, int], taken_at: int) -> None:
        try:
            async with self._require().acquire() as conn:
                await conn.executemany(
                    "INSERT INTO tally_snapshots (campaign, taken_at, nominee, votes)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    [(campaign, taken_at, nominee, votes) for nominee, votes in counts.items()],
                )
        except _DOWN as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc

    async def snapshots(self, campaign: str) -> list[tuple[int, dict[str, int]]]:
        rows = await self._fetch(
            "SELECT taken_at, nominee, votes FROM tally_snapshots WHERE campaign = $1"
            " ORDER BY taken_at, nominee",
            campaign,
        )
        history: dict[int, dict[str, int]] = {}
        for taken_at, nominee, votes in rows:
            history.setdefault(taken_at, {})[nominee] = votes
        return list(history.items())

    async def totals(
        self,
        campaign: str,
        *,
        window: tuple[int, int] | None = None,
        excluding: Sequence[str] = (),
    ) -> list[NomineeTotal]:
        start, end = window or ALL_TIME
        rows = await self._fetch(
            "SELECT nominee, COUNT(*), MAX(accepted_at) FROM votes"
            " WHERE campaign = $1 AND NOT void AND accepted_at BETWEEN $2 AND $3"
            " AND NOT (vote_id = ANY($4::text[])) GROUP BY nominee",
            campaign,
            start,
            end,
            list(excluding),
        )
        return [NomineeTotal(nominee, votes, reached) for nominee, votes, reached in rows]

    async def count(
        self, campaign: str, *, void: bool | None = None, window: tuple[int, int] | None = None
    ) -> int:
        start, end = window or ALL_TIME
        sql = "SELECT COUNT(*) FROM votes WHERE campaign = $1 AND accepted_at BETWEEN $2 AND $3"
        if void is None:
            rows = await self._fetch(sql, campaign, start, end)
        else:
            rows = await self._fetch(sql + " AND void = $4", campaign, start, end, void)
        return int(rows[0][0])

    async def voters(self, campaign: str, *, window: tuple[int, int]) -> int:
        rows = await self._fetch(
            "SELECT COUNT(DISTINCT phone_hash) FROM votes"
            " WHERE campaign = $1 AND accepted_at BETWEEN $2 AND $3",
            campaign,
            *window,
        )
        return int(rows[0][0])

    async def existing_ids(self, campaign: str, vote_ids: Sequence[str]) -> set[str]:
        rows = await self._fetch(
            "SELECT vote_id FROM votes WHERE campaign = $1 AND vote_id = ANY($2::text[])",
            campaign,
            list(vote_ids),
        )
        return {row[0] for row in rows}

    async def votes(
        self, campaign: str, *, since: int | None = None
    ) -> AsyncIterator[list[LedgerVote]]:
        try:
            async with (
                self._require().acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                chunk: list[LedgerVote] = []
                async for r in conn.cursor(
                    f"SELECT {_VOTE_COLUMNS} FROM votes WHERE campaign = $1 AND accepted_at >= $2"
                    " ORDER BY accepted_at, vote_id",
                    campaign,
                    since or 0,
                    prefetch=_CHUNK,
                ):
                    chunk.append(_vote(r))
                    if len(chunk) >= _CHUNK:
                        yield chunk
                        chunk = []
                if chunk:
                    yield chunk
        except _DOWN as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc

    async def select_valid(self, campaign: str, selection: VoteSelection) -> list[LedgerVote]:
        sql = (
            f"SELECT {_VOTE_COLUMNS} FROM votes WHERE campaign = $1 AND NOT void"
            " AND accepted_at >= $2 AND accepted_at < $3"
        )
        args: list[Any] = [campaign, selection.start, selection.end]
        if selection.phone_hash is not None:
            args.append(selection.phone_hash)
            sql += f" AND phone_hash = ${len(args)}"
        if selection.nominee is not None:
            args.append(selection.nominee)
            sql += f" AND nominee = ${len(args)}"
        if selection.prefixes:
            args.append(sorted(set(selection.prefixes)))
            sql += f" AND prefix_hash = ANY(${len(args)}::text[])"
        if selection.vote_ids:
            args.append(sorted(set(selection.vote_ids)))
            sql += f" AND vote_id = ANY(${len(args)}::text[])"
        rows = await self._fetch(sql + " ORDER BY accepted_at, vote_id", *args)
        return [_vote(row) for row in rows]

    async def void(
        self, campaign: str, vote_ids: Sequence[str], *, reason: str, audit: AuditEntry
    ) -> list[LedgerVote] | None:
        ids = sorted(set(vote_ids))
        if not ids:
            return []
        try:
            async with self._require().acquire() as conn, conn.transaction():
                if await _freeze(conn, campaign):
                    raise ResultCertified(f"the result of {campaign} is certified")
                rows = await conn.fetch(
                    "UPDATE votes SET void = TRUE, void_reason = $1"
                    " WHERE campaign = $2 AND NOT void AND vote_id = ANY($3::text[])"
                    f" RETURNING {_VOTE_COLUMNS}",
                    reason,
                    campaign,
                    ids,
                )
                if len(rows) != len(ids):
                    raise _Changed  # rolls the transaction back
                await conn.execute(
                    "INSERT INTO audit_log (campaign, at, actor, action, detail, reason)"
                    " VALUES ($1, $2, $3, $4, $5, $6)",
                    campaign,
                    audit.at,
                    audit.actor,
                    audit.action,
                    audit.detail,
                    audit.reason,
                )
        except _Changed:
            return None
        except _DOWN as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
        return sorted((_vote(row) for row in rows), key=lambda v: (v.accepted_at, v.vote_id))

    async def certification(self, campaign: str) -> Certification | None:
        rows = await self._fetch(
            f"SELECT {_CERTIFICATION} FROM certifications WHERE campaign = $1", campaign
        )
        return Certification(*rows[0]) if rows else None

    async def certify(
        self, campaign: str, certification: Certification, *, audit: AuditEntry
    ) -> bool:
        c = certification
        try:
            async with self._require().acquire() as conn, conn.transaction():
                if await _freeze(conn, campaign):
                    raise ResultCertified(f"the result of {campaign} is certified already")
                votes, void = await conn.fetchrow(
                    "SELECT COUNT(*), COUNT(*) FILTER (WHERE void) FROM votes WHERE campaign = $1",
                    campaign,
                )
                if (votes, void) != (c.votes, c.void):
                    raise _Changed  # rolls the transaction back
                await conn.execute(
                    f"INSERT INTO certifications (campaign, {_CERTIFICATION})"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    campaign,
                    c.certified_at,
                    c.actor,
                    c.votes,
                    c.void,
                    c.export_sha256,
                    c.result,
                )
                await conn.execute(
                    "INSERT INTO audit_log (campaign, at, actor, action, detail, reason)"
                    " VALUES ($1, $2, $3, $4, $5, $6)",
                    campaign,
                    audit.at,
                    audit.actor,
                    audit.action,
                    audit.detail,
                    audit.reason,
                )
        except _Changed:
            return False
        except _DOWN as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
        return True

    async def record_audit(self, campaign: str, audit: AuditEntry) -> None:
        await self._fetch(
            "INSERT INTO audit_log (campaign, at, actor, action, detail, reason)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            campaign,
            audit.at,
            audit.actor,
            audit.action,
            audit.detail,
            audit.reason,
        )

    async def audit_log(
        self,
        campaign: str,
        *,
        action: str | None = None,
        actor: str | None = None,
        since: int | None = None,
        until: int | None = None,
        last: int | None = None,
    ) -> list[AuditEntry]:
        sql = "SELECT id, at, actor, action, detail, reason FROM audit_log WHERE campaign = $1"
        args: list[Any] = [campaign]
        for clause, value in (
            ("action =", action),
            ("actor =", actor),
            ("at >=", since),
            ("at <", until),
        ):
            if value is not None:
                args.append(value)
                sql += f" AND {clause} ${len(args)}"
        sql += " ORDER BY id DESC"
        if last is not None:
            args.append(last)
            sql += f" LIMIT ${len(args)}"
        rows = await self._fetch(sql, *args)
        return [AuditEntry(*row[1:]) for row in reversed(rows)]

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._fetch(sql, *args)]

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            async with self._require().acquire() as conn:
                status: str = await conn.execute(sql, *args)
        except _DOWN as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
        count = status.rsplit(" ", 1)[-1]
        return int(count) if count.isdigit() else 0

    async def campaign_meta(self, campaign: str) -> CampaignMeta | None:
        rows = await self._fetch(
            "SELECT codes, shards, secret_fingerprint FROM campaign_meta WHERE campaign = $1",
            campaign,
        )
        if not rows:
            return None
        codes, shards, fingerprint = rows[0]
        return CampaignMeta(json.loads(codes), int(shards), fingerprint)

    async def save_campaign_meta(self, campaign: str, meta: CampaignMeta) -> None:
        await self._fetch(
            "INSERT INTO campaign_meta (campaign, codes, shards, secret_fingerprint)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (campaign) DO UPDATE SET codes = excluded.codes,"
            " shards = excluded.shards, secret_fingerprint = excluded.secret_fingerprint",
            campaign,
            meta.as_json().decode(),
            meta.shards,
            meta.secret_fingerprint,
        )

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        try:
            async with self._require().acquire() as conn:
                return list(await conn.fetch(sql, *args))
        except _DOWN as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc


def _vote(row: Any) -> LedgerVote:
    return LedgerVote(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8])


async def _freeze(conn: asyncpg.Connection, campaign: str) -> bool:
    """Take the campaign's freeze lock for this transaction; whether it is certified."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _FREEZE_LOCK, campaign)
    return bool(await conn.fetchval("SELECT 1 FROM certifications WHERE campaign = $1", campaign))


def public_url(dsn: str) -> str:
    """``dsn`` without its password (in the user part or as a ``password`` parameter)."""
    parts = urlsplit(dsn)
    user, at, hosts = parts.netloc.rpartition("@")
    netloc = user.partition(":")[0] + at + hosts
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


async def schema_present(dsn: str, *, connect_timeout: float = 5.0) -> bool:
    """Whether the database at ``dsn`` holds a ledger (its ``schema_migrations``
    table); a database that does not exist holds none. Migrates nothing."""
    try:
        conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    except asyncpg.InvalidCatalogNameError:
        return False
    except _DOWN as exc:
        raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
    try:
        found = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    except _DOWN as exc:
        raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
    finally:
        await conn.close()
    return bool(found)


async def _migrate(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)"
    )
    done = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements("postgres"):
            await conn.execute(statement)
        await conn.execute(
            "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
            migration.version,
            migration.description,
            int(time.time() * 1000),
        )
