"""Console accounts: names, roles and argon2 passwords.

A password is kept only as its argon2id hash (argon2-cffi's defaults: 64 MiB,
3 passes), checked in a worker thread so the event loop keeps serving votes,
and at most two at a time: a burst of sign-ins cannot take the machine's
memory. An unknown name is checked against a hash of nothing, so a wrong name
takes as long as a wrong password.
"""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "OPERATOR",
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "ROLES",
    "VIEWER",
    "Passwords",
    "check_name",
    "check_new_password",
]

VIEWER = "viewer"  # sees every page
OPERATOR = "operator"  # also voids (and, later, certifies and exports)
ROLES = (VIEWER, OPERATOR)
PASSWORD_MIN = 12  # characters
PASSWORD_MAX = 1024  # characters: a longer one is refused before any hashing
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_CHECKS_AT_ONCE = 2


def check_name(name: str) -> str | None:
    """Why ``name`` cannot be an account's name (None: it can)."""
    if not _NAME.fullmatch(name):
        return "a name is 1-64 of A-Z a-z 0-9 _ . @ -"
    return None


def check_new_password(password: str) -> str | None:
    """Why ``password`` cannot be set (None: it can)."""
    if len(password) < PASSWORD_MIN:
        return f"a password has at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"a password has at most {PASSWORD_MAX} characters"
    return None


class Passwords:
    """argon2id hashing and checking, off the event loop."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._nothing: str | None = None  # an unknown name is checked against this
        self._slots = asyncio.Semaphore(_CHECKS_AT_ONCE)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def matches(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` is the one ``stored`` hashes (None: no such account)."""
        if self._nothing is None:
            self._nothing = self._hasher.hash("")
        try:
            return self._hasher.verify(stored or self._nothing, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def check(self, stored: str | None, password: str) -> bool:
        """:meth:`matches` in a worker thread; a password too long is refused unhashed."""
        if len(password) > PASSWORD_MAX:
            return False
        async with self._slots:
            return await asyncio.to_thread(self.matches, stored, password)
