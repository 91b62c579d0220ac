"""The organisers' console's tables: accounts, sessions, wrong passwords.

Their SQL is the same in both dialects, so it is written once here and run
through :meth:`Store.query` / :meth:`Store.execute` (``$1`` placeholders).
A password is kept only as its argon2 hash, a session only as the SHA-256 of
its token, a client only as the keyed hash of its network prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from votesvc.ledger.store.base import Store

__all__ = ["Account", "AdminSession", "AdminTables"]


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str  # "viewer" or "operator" (votesvc.admin.accounts)
    password_hash: str  # argon2 PHC string
    disabled: bool
    created_at: int  # epoch ms
    signed_in_at: int | None  # the last sign-in, epoch ms


@dataclass(frozen=True, slots=True)
class AdminSession:
    token_hash: str
    account: str
    created_at: int  # epoch ms
    seen_at: int  # the last request, epoch ms


_ACCOUNT = "name, role, password_hash, disabled, created_at, signed_in_at"


class AdminTables:
    """The console's rows in ``store`` (opened by its owner)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def account(self, name: str) -> Account | None:
        rows = await self.store.query(
            f"SELECT {_ACCOUNT} FROM admin_accounts WHERE name = $1", name
        )
        return _account(rows[0]) if rows else None

    async def accounts(self) -> list[Account]:
        rows = await self.store.query(f"SELECT {_ACCOUNT} FROM admin_accounts ORDER BY name")
        return [_account(row) for row in rows]

    async def any_active(self) -> bool:
        """Whether some account may sign in (the console exists only then)."""
        rows = await self.store.query(
            "SELECT 1 FROM admin_accounts WHERE NOT disabled LIMIT 1",
        )
        return bool(rows)

    async def add_account(self, account: Account) -> bool:
        """Add ``account``; False (nothing changed) when the name is taken."""
        added = await self.store.execute(
            f"INSERT INTO admin_accounts ({_ACCOUNT}) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (name) DO NOTHING",
            account.name,
            account.role,
            account.password_hash,
            account.disabled,
            account.created_at,
            account.signed_in_at,
        )
        return added == 1

    async def set_password(self, name: str, password_hash: str) -> bool:
        changed = await self.store.execute(
            "UPDATE admin_accounts SET password_hash = $2 WHERE name = $1", name, password_hash
        )
        return changed == 1

    async def set_disabled(self, name: str, disabled: bool) -> bool:
        changed = await self.store.execute(
            "UPDATE admin_accounts SET disabled = $2 WHERE name = $1", name, disabled
        )
        return changed == 1

    async def note_signin(self, name: str, at: int) -> None:
        await self.store.execute(
            "UPDATE admin_accounts SET signed_in_at = $2 WHERE name = $1", name, at
        )

    async def add_session(self, session: AdminSession) -> None:
        await self.store.execute(
            "INSERT INTO admin_sessions (token_hash, account, created_at, seen_at)"
            " VALUES ($1, $2, $3, $4)",
            session.token_hash,
            session.account,
            session.created_at,
            session.seen_at,
        )

    async def session(self, token_hash: str) -> AdminSession | None:
        rows = await self.store.query(
            "SELECT token_hash, account, created_at, seen_at FROM admin_sessions"
            " WHERE token_hash = $1",
            token_hash,
        )
        return AdminSession(*rows[0]) if rows else None

    async def touch_session(self, token_hash: str, seen_at: int) -> None:
        await self.store.execute(
            "UPDATE admin_sessions SET seen_at = $2 WHERE token_hash = $1", token_hash, seen_at
        )

    async def end_session(self, token_hash: str) -> None:
        await self.store.execute("DELETE FROM admin_sessions WHERE token_hash = $1", token_hash)

    async def end_sessions(self, account: str, *, older_than: int | None = None) -> int:
        """End the account's sessions (only those last seen before ``older_than``)."""
        if older_than is None:
            return await self.store.execute(
                "DELETE FROM admin_sessions WHERE account = $1", account
            )
        return await self.store.execute(
            "DELETE FROM admin_sessions WHERE account = $1 AND seen_at < $2", account, older_than
        )

    async def add_failure(self, account: str, prefix: str, at: int, *, forget_before: int) -> None:
        """Note a wrong password; rows older than ``forget_before`` go at the same time."""
        await self.store.execute("DELETE FROM admin_signin_failures WHERE at < $1", forget_before)
        await self.store.execute(
            "INSERT INTO admin_signin_failures (account, prefix, at) VALUES ($1, $2, $3)",
            account,
            prefix,
            at,
        )

    async def failures(self, account: str, prefix: str, *, since: int) -> list[int]:
        """When the wrong passwords for ``account`` from ``prefix`` since ``since`` came."""
        rows = await self.store.query(
            "SELECT at FROM admin_signin_failures WHERE account = $1 AND prefix = $2"
            " AND at >= $3 ORDER BY at",
            account,
            prefix,
            since,
        )
        return [int(row[0]) for row in rows]

    async def clear_failures(self, account: str, prefix: str) -> None:
        await self.store.execute(
            "DELETE FROM admin_signin_failures WHERE account = $1 AND prefix = $2", account, prefix
        )


def _account(row: tuple[Any, ...]) -> Account:
    name, role, password_hash, disabled, created_at, signed_in_at = row
    return Account(
        str(name), str(role), str(password_hash), bool(disabled), int(created_at), signed_in_at
    )
