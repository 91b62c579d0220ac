"""Console sessions: server-side rows behind an opaque cookie, revocable.

The cookie holds 32 random bytes; the ledger holds only their SHA-256, so a
copy of the database opens no session. A session ends after 30 minutes
without a request, 12 hours after sign-in, at sign-out, and when its account
is disabled or its password changed. Signing in always makes a new session
(the old cookie's row is deleted), so a token planted before sign-in is worth
nothing after it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from votesvc.ledger.store.admin import Account, AdminSession, AdminTables

__all__ = [
    "COOKIE",
    "IDLE_MS",
    "LONGEST_MS",
    "Sessions",
    "SignedIn",
    "cookie_header",
    "token_hash",
]

COOKIE = "votesvc_admin"
PATH = "/admin"
IDLE_MS = 30 * 60 * 1000  # without a request
LONGEST_MS = 12 * 3600 * 1000  # after sign-in, whatever the activity
_TOUCH_EVERY_MS = 15 * 1000  # a session's last-seen time is written at most this often


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cookie_header(name: str, value: str, *, secure: bool, clear: bool = False) -> str:
    """A ``Set-Cookie`` value for the console: HttpOnly, SameSite=Strict, under /admin."""
    parts = [f"{name}={value}", f"Path={PATH}", "HttpOnly", "SameSite=Strict"]
    if clear:
        parts.append("Max-Age=0")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session and its account."""

    account: Account
    token_hash: str
    started_at: int  # epoch ms


class Sessions:
    """Start, find and end sessions in the ledger's ``admin_sessions``."""

    def __init__(self, tables: AdminTables) -> None:
        self._tables = tables

    async def start(self, account: Account, now_ms: int, *, replacing: str | None) -> str:
        """A new session for ``account``; returns the cookie's token."""
        if replacing:
            await self._tables.end_session(token_hash(replacing))
        # The account's sessions left to expire (a closed browser) go now.
        await self._tables.end_sessions(account.name, older_than=now_ms - IDLE_MS)
        token = secrets.token_urlsafe(32)
        await self._tables.add_session(
            AdminSession(token_hash(token), account.name, now_ms, now_ms)
        )
        return token

    async def find(self, token: str | None, now_ms: int) -> SignedIn | None:
        """The live session of ``token``, its last-seen time moved on; None if none.

        An expired session, or one whose account is gone or disabled, is ended here.
        """
        if not token or len(token) > 100:
            return None
        hashed = token_hash(token)
        session = await self._tables.session(hashed)
        if session is None:
            return None
        account = await self._tables.account(session.account)
        expired = now_ms - session.seen_at > IDLE_MS or now_ms - session.created_at > LONGEST_MS
        if expired or account is None or account.disabled:
            await self._tables.end_session(hashed)
            return None
        if now_ms - session.seen_at >= _TOUCH_EVERY_MS:
            await self._tables.touch_session(hashed, now_ms)
        return SignedIn(account, hashed, session.created_at)

    async def end(self, token: str | None) -> None:
        if token:
            await self._tables.end_session(token_hash(token))
