"""The SQLite ledger (the default): one file in the data directory, WAL mode.

sqlite3 blocks, so every call runs on one worker thread that owns the
connection; the event loop only awaits it. ``synchronous=FULL``: a batch the
flusher acknowledged in Redis is on disk, even after a power loss.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

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

__all__ = ["SqliteStore"]

T = TypeVar("T")

_CHUNK = 5000
_IDS_PER_STATEMENT = 500  # well under SQLite's bound on host parameters
_PLACEHOLDER = re.compile(r"\$(\d+)")  # PostgreSQL's $1 is SQLite's ?1
_VOTE_COLUMNS = (
    "vote_id, nominee, phone_hash, ip_hash, accepted_at, void, void_reason, method, prefix_hash"
)
_CERTIFICATION = "certified_at, actor, votes, void, export_sha256, result"


class _Changed(Exception):
    """Inside a transaction: roll it back, the votes are not as expected."""


class SqliteStore:
    """The ledger in the SQLite file ``path``."""

    name = "sqlite"

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            raise StoreUnavailable("the SQLite store is not open")

        def call() -> T:
            if self._conn is None:
                self._conn = self._connect()
            return func(self._conn)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite {self.path}: {exc}") from exc
        except OSError as exc:  # the file's directory is missing and cannot be made
            where = f"{exc.filename}: " if exc.filename else ""
            raise StoreUnavailable(f"SQLite {self.path}: {where}{exc.strerror or exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="votesvc-sqlite")
        await self._run(_migrate)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(executor, shut)
        executor.shutdown(wait=True)

    async def insert_votes(self, rows: Sequence[VoteRow]) -> int:
        def insert(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            with _transaction(conn):
                conn.executemany(
                    "INSERT OR IGNORE INTO votes (vote_id, campaign, nominee, phone_hash,"
                    " ip_hash, accepted_at, method, prefix_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            return conn.total_changes - before

        return await self._run(insert)

    async def insert_snapshot(self, campaign: str, counts: dict[str, int], taken_at: int) -> None:
        params = [(campaign, taken_at, nominee, votes) for nominee, votes in counts.items()]

        def insert(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany(
                    "INSERT OR IGNORE INTO tally_snapshots (campaign, taken_at, nominee, votes)"
                    " VALUES (?, ?, ?, ?)",
                    params,
                )

        await self._run(insert)

    async def snapshots(self, campaign: str) -> list[tuple[int, dict[str, int]]]:
        rows = await self._fetch(
            "SELECT taken_at, nominee, votes FROM tally_snapshots WHERE campaign = ?"
            " ORDER BY taken_at, nominee",
            (campaign,),
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
        sql = (
            "SELECT nominee, COUNT(*), MAX(accepted_at) FROM votes"
            " WHERE campaign = ? AND NOT void AND accepted_at BETWEEN ? AND ?"
        )
        params = (campaign, start, end)
        if not excluding:
            rows = await self._fetch(sql + " GROUP BY nominee", params)
        else:

            def without(conn: sqlite3.Connection) -> list[Any]:
                # A temporary table on this connection: no write lock on the ledger.
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS excluded (vote_id TEXT PRIMARY KEY)")
                conn.execute("DELETE FROM excluded")
                try:
                    conn.executemany(
                        "INSERT OR IGNORE INTO excluded VALUES (?)", ((i,) for i in excluding)
                    )
                    return conn.execute(
                        sql + " AND vote_id NOT IN (SELECT vote_id FROM excluded) GROUP BY nominee",
                        params,
                    ).fetchall()
                finally:
                    conn.execute("DELETE FROM excluded")

            rows = await self._run(without)
        return [NomineeTotal(nominee, votes, reached) for nominee, votes, reached in rows]

    async def count(
        self, campaign: str, *, void: bool | None = None, window: tuple[int, int] | None = None
    ) -> int:
        start, end = window or ALL_TIME
        sql = "SELECT COUNT(*) FROM votes WHERE campaign = ? AND accepted_at BETWEEN ? AND ?"
        params: tuple[Any, ...] = (campaign, start, end)
        if void is not None:
            sql += " AND void = ?"
            params += (void,)
        rows = await self._fetch(sql, params)
        return int(rows[0][0])

    async def voters(self, campaign: str, *, window: tuple[int, int]) -> int:
        rows = await self._fetch(
            "SELECT COUNT(DISTINCT phone_hash) FROM votes"
            " WHERE campaign = ? AND accepted_at BETWEEN ? AND ?",
            (campaign, *window),
        )
        return int(rows[0][0])

    async def existing_ids(self, campaign: str, vote_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(vote_ids), 500):
            chunk = list(vote_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = await self._fetch(
                f"SELECT vote_id FROM votes WHERE campaign = ? AND vote_id IN ({marks})",
                (campaign, *chunk),
            )
            found.update(row[0] for row in rows)
        return found

    async def votes(
        self, campaign: str, *, since: int | None = None
    ) -> AsyncIterator[list[LedgerVote]]:
        # A dedicated connection: one read transaction for the whole walk, while
        # the store's own connection keeps serving (WAL lets both proceed).
        conn = await self._run(lambda _: self._connect())
        try:
            sql = (
                f"SELECT {_VOTE_COLUMNS} FROM votes WHERE campaign = ? AND accepted_at >= ?"
                " ORDER BY accepted_at, vote_id"
            )
            cursor = await self._run(lambda _: conn.execute(sql, (campaign, since or 0)))
            while True:
                chunk = await self._run(lambda _: cursor.fetchmany(_CHUNK))
                if not chunk:
                    return
                yield [_vote(row) for row in chunk]
        finally:
            await self._run(lambda _: conn.close())

    async def select_valid(self, campaign: str, selection: VoteSelection) -> list[LedgerVote]:
        sql = (
            f"SELECT {_VOTE_COLUMNS} FROM votes WHERE campaign = ? AND NOT void"
            " AND accepted_at >= ? AND accepted_at < ?"
        )
        params: tuple[Any, ...] = (campaign, selection.start, selection.end)
        if selection.phone_hash is not None:
            sql += " AND phone_hash = ?"
            params += (selection.phone_hash,)
        if selection.nominee is not None:
            sql += " AND nominee = ?"
            params += (selection.nominee,)
        if selection.prefixes:
            prefixes = sorted(set(selection.prefixes))
            sql += f" AND prefix_hash IN ({','.join('?' * len(prefixes))})"
            params += tuple(prefixes)
        if not selection.vote_ids:
            rows = await self._fetch(sql, params)
        else:
            rows = []
            ids = sorted(set(selection.vote_ids))
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                rows += await self._fetch(sql + f" AND vote_id IN ({marks})", (*params, *chunk))
        votes = [_vote(row) for row in rows]
        return sorted(votes, key=lambda vote: (vote.accepted_at, vote.vote_id))

    async def void(
        self, campaign: str, vote_ids: Sequence[str], *, reason: str, audit: AuditEntry
    ) -> list[LedgerVote] | None:
        ids = sorted(set(vote_ids))
        if not ids:
            return []

        def void(conn: sqlite3.Connection) -> list[LedgerVote] | None:
            rows: list[Any] = []
            try:
                with _transaction(conn):
                    if _certified(conn, campaign):  # BEGIN IMMEDIATE: a certify waits for us
                        raise ResultCertified(f"the result of {campaign} is certified")
                    for chunk in _chunks(ids):
                        marks = ",".join("?" * len(chunk))
                        rows += conn.execute(
                            "UPDATE votes SET void = TRUE, void_reason = ?"
                            f" WHERE campaign = ? AND NOT void AND vote_id IN ({marks})"
                            f" RETURNING {_VOTE_COLUMNS}",
                            (reason, campaign, *chunk),
                        ).fetchall()
                    if len(rows) != len(ids):
                        raise _Changed
                    conn.execute(
                        "INSERT INTO audit_log (campaign, at, actor, action, detail, reason)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (campaign, audit.at, audit.actor, audit.action, audit.detail, audit.reason),
                    )
            except _Changed:
                return None
            return sorted((_vote(row) for row in rows), key=lambda v: (v.accepted_at, v.vote_id))

        return await self._run(void)

    async def certification(self, campaign: str) -> Certification | None:
        rows = await self._fetch(
            f"SELECT {_CERTIFICATION} FROM certifications WHERE campaign = ?", (campaign,)
        )
        return Certification(*rows[0]) if rows else None

    async def certify(
        self, campaign: str, certification: Certification, *, audit: AuditEntry
    ) -> bool:
        def certify(conn: sqlite3.Connection) -> bool:
            try:
                with _transaction(conn):  # BEGIN IMMEDIATE: no void runs meanwhile
                    if _certified(conn, campaign):
                        raise ResultCertified(f"the result of {campaign} is certified already")
                    votes, void = conn.execute(
                        "SELECT COUNT(*), COALESCE(SUM(void), 0) FROM votes WHERE campaign = ?",
                        (campaign,),
                    ).fetchone()
                    if (votes, void) != (certification.votes, certification.void):
                        raise _Changed
                    c = certification
                    conn.execute(
                        f"INSERT INTO certifications (campaign, {_CERTIFICATION})"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            campaign,
                            c.certified_at,
                            c.actor,
                            c.votes,
                            c.void,
                            c.export_sha256,
                            c.result,
                        ),
                    )
                    conn.execute(
                        "INSERT INTO audit_log (campaign, at, actor, action, detail, reason)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (campaign, audit.at, audit.actor, audit.action, audit.detail, audit.reason),
                    )
            except _Changed:
                return False
            return True

        return await self._run(certify)

    async def record_audit(self, campaign: str, audit: AuditEntry) -> None:
        await self._fetch(
            "INSERT INTO audit_log (campaign, at, actor, action, detail, reason)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (campaign, audit.at, audit.actor, audit.action, audit.detail, audit.reason),
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
        sql = "SELECT id, at, actor, action, detail, reason FROM audit_log WHERE campaign = ?"
        params: tuple[Any, ...] = (campaign,)
        for clause, value in (
            (" AND action = ?", action),
            (" AND actor = ?", actor),
            (" AND at >= ?", since),
            (" AND at < ?", until),
        ):
            if value is not None:
                sql += clause
                params += (value,)
        sql += " ORDER BY id DESC"
        if last is not None:
            sql += " LIMIT ?"
            params += (last,)
        rows = await self._fetch(sql, params)
        return [AuditEntry(*row[1:]) for row in reversed(rows)]

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        rows = await self._fetch(_PLACEHOLDER.sub(r"?\1", sql), args)
        return [tuple(row) for row in rows]

    async def execute(self, sql: str, *args: Any) -> int:
        statement = _PLACEHOLDER.sub(r"?\1", sql)
        return await self._run(lambda conn: conn.execute(statement, args).rowcount)

    async def campaign_meta(self, campaign: str) -> CampaignMeta | None:
        rows = await self._fetch(
            "SELECT codes, shards, secret_fingerprint FROM campaign_meta WHERE campaign = ?",
            (campaign,),
        )
        if not rows:
            return None
        codes, shards, fingerprint = rows[0]
        return CampaignMeta(json.loads(codes), int(shards), fingerprint)

    async def save_campaign_meta(self, campaign: str, meta: CampaignMeta) -> None:
        await self._fetch(
            "INSERT INTO campaign_meta (campaign, codes, shards, secret_fingerprint)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (campaign) DO UPDATE SET codes = excluded.codes,"
            " shards = excluded.shards, secret_fingerprint = excluded.secret_fingerprint",
            (campaign, meta.as_json().decode(), meta.shards, meta.secret_fingerprint),
        )

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return await self._run(lambda conn: conn.execute(sql, params).fetchall())


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [
        ids[start : start + _IDS_PER_STATEMENT] for start in range(0, len(ids), _IDS_PER_STATEMENT)
    ]


def _vote(row: Sequence[Any]) -> LedgerVote:
    return LedgerVote(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7], row[8])


def _certified(conn: sqlite3.Connection, campaign: str) -> bool:
    found = conn.execute("SELECT 1 FROM certifications WHERE campaign = ?", (campaign,))
    return found.fetchone() is not None


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        if kind is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error:
                self.conn.execute("ROLLBACK")
                raise
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def _migrate(conn: sqlite3.Connection) -> None:
    with _transaction(conn):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            for statement in migration.statements("sqlite"):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (migration.version, migration.description, int(time.time() * 1000)),
            )
