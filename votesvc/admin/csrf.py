"""CSRF tokens for the console's forms.

Every form that changes something carries a token the server can recompute:
after sign-in, an HMAC of the session (its token's hash, which never leaves
the server); before it, an HMAC of a random value in a cookie of its own
(the sign-in form). A request whose token does not match is refused with
``403 csrf_failed`` before anything else is looked at. The session cookie is
also ``SameSite=Strict``: this is the second lock on the same door.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from votesvc.keyring import derive_key

__all__ = ["FIELD", "PRE_COOKIE", "Csrf"]

FIELD = "csrf"  # the hidden field's name
PRE_COOKIE = "votesvc_admin_signin"  # the sign-in form's cookie


class Csrf:
    """Tokens keyed by a key derived from the service secret."""

    def __init__(self, secret: bytes) -> None:
        self._key = derive_key(secret, "admin-csrf")

    def for_session(self, session_hash: str) -> str:
        return self._mac("session:" + session_hash)

    def new_pre_session(self) -> str:
        """A random value for the sign-in form's cookie."""
        return secrets.token_urlsafe(24)

    def for_pre_session(self, cookie: str) -> str:
        return self._mac("signin:" + cookie)

    def valid(self, expected: str, given: object) -> bool:
        """Whether ``given`` (the form's field) is ``expected``, in constant time."""
        return isinstance(given, str) and hmac.compare_digest(expected, given)

    def _mac(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()
