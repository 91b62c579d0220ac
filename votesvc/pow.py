"""Proof of work: ALTCHA v1 challenges, made and checked by the ``altcha`` package.

A page asks for a challenge, its ALTCHA widget finds the number whose SHA-256
with the salt gives ``challenge`` (on average ``max_number / 2`` hashes), and
sends the solution back base64-encoded with the request it guards. The
challenge is signed (HMAC-SHA256 under a key derived for "pow") and carries
its expiry in the salt, so the server keeps no state until a solution comes.

A solution is valid until its challenge expires; :meth:`ProofOfWork.check`
returns the ``challenge`` hex as a replay id and the expiry, and the caller
stores the id (``SET NX`` until expiry) so that each solution is spent once.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from datetime import UTC, datetime
from typing import Any, Final

import orjson

# altcha.v1 is what the package exports as ChallengeOptionsV1, create_challenge_v1, ...;
# imported from there because those aliases are not re-exports mypy --strict accepts.
from altcha.v1 import (
    ChallengeOptions,
    Payload,
    create_challenge,
    extract_params,
    hmac_hex,
    verify_solution,
)

from votesvc.days import Clock, system_clock
from votesvc.keyring import derive_key

__all__ = ["MAX_PAYLOAD_CHARS", "PowInvalid", "ProofOfWork"]

MAX_PAYLOAD_CHARS = 2048  # a real solution is about 300 characters
_ALGORITHM: Final = "SHA-256"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("algorithm", "challenge", "number", "salt", "signature")


class PowInvalid(Exception):
    """A proof-of-work payload was refused; the message says why (for logs only)."""


class ProofOfWork:
    """Issues ALTCHA v1 challenges and checks their solutions."""

    __slots__ = ("_clock", "_key", "max_number", "ttl_seconds")

    def __init__(
        self,
        secret: bytes,
        max_number: int,
        *,
        ttl_seconds: int = 300,
        clock: Clock = system_clock,
    ) -> None:
        # altcha reads max_number=0 as its default (1e6): refuse it rather than surprise.
        if max_number < 1:
            raise ValueError(f"max_number must be at least 1, not {max_number}")
        if ttl_seconds < 1:
            raise ValueError(f"ttl_seconds must be at least 1, not {ttl_seconds}")
        self._key = derive_key(secret, "pow")
        self.max_number = max_number
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def challenge(self) -> dict[str, Any]:
        """A new challenge, as the widget expects it (``algorithm``, ``challenge``,
        ``maxNumber``, ``salt``, ``signature``); it expires ``ttl_seconds`` from now."""
        expires = datetime.fromtimestamp(self._clock() + self.ttl_seconds, UTC)
        options = ChallengeOptions(
            algorithm=_ALGORITHM,
            max_number=self.max_number,
            hmac_key=self._key,
            expires=expires,
        )
        made: dict[str, Any] = create_challenge(options).to_dict()
        return made

    def check(self, payload: str) -> tuple[str, int]:
        """``(replay_id, expires)`` of a valid solution, or :class:`PowInvalid`.

        ``payload`` is the widget's base64 JSON; ``replay_id`` is the challenge's
        64 hex digits and ``expires`` the epoch second it stops being valid.
        """
        fields = _decode(payload)
        algorithm = fields["algorithm"]
        challenge = fields["challenge"]
        number = fields["number"]
        salt = fields["salt"]
        signature = fields["signature"]
        if algorithm != _ALGORITHM:
            raise PowInvalid(f"algorithm {algorithm!r:.40} is not {_ALGORITHM}")
        if type(number) is not int or not 0 <= number <= self.max_number:
            raise PowInvalid(f"number is not an integer in 0..{self.max_number}")
        if not isinstance(salt, str):
            raise PowInvalid("salt is not a string")
        for name, value in (("challenge", challenge), ("signature", signature)):
            if not isinstance(value, str) or not _HEX64.fullmatch(value):
                raise PowInvalid(f"{name} is not 64 lower-case hex digits")

        expires = extract_params(fields).get("expires", [])
        if len(expires) != 1 or not expires[0].isascii() or not expires[0].isdigit():
            raise PowInvalid("the salt carries no single expiry")
        expires_at = int(expires[0])
        # Our clock, not altcha's time.time(), decides expiry (the service's one
        # clock; tests drive it): altcha's own expiry check is turned off below.
        if expires_at <= self._clock():
            raise PowInvalid("the challenge has expired")

        # altcha compares the signature with ==: check it in constant time first.
        expected = hmac_hex(_ALGORITHM, challenge.encode("ascii"), self._key)
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
            raise PowInvalid("bad signature")
        solution = Payload(_ALGORITHM, challenge, number, salt, signature)
        ok, error = verify_solution(solution, self._key, check_expires=False)
        if not ok:
            raise PowInvalid(error or "the number does not solve the challenge")
        return challenge, expires_at


def _decode(payload: object) -> Any:
    """The payload's JSON object with the five fields present, or :class:`PowInvalid`."""
    if not isinstance(payload, str):
        raise PowInvalid("payload is not a string")
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise PowInvalid(f"payload is longer than {MAX_PAYLOAD_CHARS} characters")
    try:
        fields = orjson.loads(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        raise PowInvalid("payload is not base64 JSON") from None
    if not isinstance(fields, dict):
        raise PowInvalid("payload is not a JSON object")
    missing = [name for name in _FIELDS if name not in fields]
    if missing:
        raise PowInvalid(f"payload lacks {', '.join(missing)}")
    return fields
