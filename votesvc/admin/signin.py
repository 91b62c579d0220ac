"""Deciding a sign-in: the lockout, the password, the new session, the audit rows.

The HTTP side (the form, its CSRF token, the cookie, the page) is
:mod:`votesvc.admin.console`'s; this module says what an attempt comes to.
A name that is no account is not written anywhere: it may be a password
typed into the wrong field.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from votesvc.admin.accounts import Passwords, check_name
from votesvc.admin.lockout import Lockout
from votesvc.admin.sessions import Sessions
from votesvc.ledger.store.admin import AdminTables

__all__ = ["Attempt", "SignIns"]

log = logging.getLogger(__name__)

Audit = Callable[[str, str, Mapping[str, object], float], Awaitable[None]]
_VIA = {"via": "console"}


@dataclass(frozen=True, slots=True)
class Attempt:
    """What a sign-in came to: ``outcome`` is ``ok`` (with the session's ``token``),
    ``wrong_password``, ``unknown_account``, ``locked`` (``until``, epoch ms) or
    ``disabled``; the metrics count it by that word."""

    outcome: str
    token: str | None = None
    until: int | None = None


class SignIns:
    def __init__(
        self,
        tables: AdminTables,
        sessions: Sessions,
        lockout: Lockout,
        passwords: Passwords,
        audit: Audit,
    ) -> None:
        self._tables = tables
        self._sessions = sessions
        self._lockout = lockout
        self._passwords = passwords
        self._audit = audit

    async def attempt(
        self, name: str, password: str, prefix: str, now: float, *, replacing: str | None
    ) -> Attempt:
        """Sign ``name`` in from the network ``prefix``; raises StoreUnavailable.

        ``replacing``: the session token the browser had, ended if it signs in.
        """
        now_ms = int(now * 1000)
        account = await self._tables.account(name) if check_name(name) is None else None
        if account is not None:
            until = await self._lockout.locked_until(account.name, prefix, now_ms)
            if until is not None:  # the password is not even checked
                return Attempt("locked", until=until)
        right = await self._passwords.check(account.password_hash if account else None, password)
        if account is None:
            log.info("console: sign-in with a name that is no account")
            return Attempt("unknown_account")
        if not right:
            await self._audit(account.name, "signin_failed", _VIA, now)
            until = await self._lockout.wrong_password(account.name, prefix, now_ms)
            if until is None:
                return Attempt("wrong_password")
            await self._audit(account.name, "signin_locked", {**_VIA, "until": until}, now)
            log.warning("console: %s is locked from one network after wrong passwords", name)
            return Attempt("locked", until=until)
        if account.disabled:
            await self._audit(account.name, "signin_refused", _VIA, now)
            return Attempt("disabled")
        await self._lockout.right_password(account.name, prefix)
        token = await self._sessions.start(account, now_ms, replacing=replacing)
        await self._tables.note_signin(account.name, now_ms)
        await self._audit(account.name, "signin", _VIA, now)
        log.info("console: %s signed in", account.name)
        return Attempt("ok", token=token)
