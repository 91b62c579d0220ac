"""Voter tokens: who a verified vote comes from.

A verified campaign takes a vote only with ``Authorization: Bearer <JWT>``, HS256
and nothing else. Two issuers are accepted:

- votesvc itself (``iss`` "votesvc"), after a voter proves a phone by SMS code:
  ``sub`` is the phone hash, signed with a key derived for "voter-token".
- a partner (``iss`` a configured partner id) whose app already knows its user:
  signed with that partner's key, ``exp - iat`` at most the token lifetime,
  with 30 s of leeway for the partner's clock. With a ``phone_number`` claim the
  voter is that phone (the same hash an SMS voter of it gets), else the
  partner's user ``sub``, hashed under the secret with the partner id.

Checked tokens are cached per process until they expire, so the vote path pays
a dict lookup per vote, not a JSON parse and an HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import orjson

from votesvc.days import Clock, system_clock
from votesvc.errors import ConfigError
from votesvc.keyring import derive_key
from votesvc.phones import PhoneHasher, normalize_phone

__all__ = ["ISSUER", "LEEWAY", "MAX_TOKEN_CHARS", "TokenInvalid", "Voter", "VoterTokens"]

ISSUER = "votesvc"
MAX_TOKEN_CHARS = 4096
LEEWAY = 30  # seconds a partner's clock, or another host's, may be off
_MAX_SUB_CHARS = 256
_ALGORITHMS = ["HS256"]
_REQUIRED = ["iss", "aud", "sub", "iat", "exp"]
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PARTNER_USER = "partner-user:"


class TokenInvalid(Exception):
    """A token was refused; the message says why (for logs, not for clients)."""


@dataclass(frozen=True, slots=True)
class Voter:
    phone_hash: str  # 64 lower-case hex: the key quotas and dedup use
    method: str  # "sms" or "partner:<id>"


class VoterTokens:
    """Issues votesvc's voter tokens for one campaign, and checks them and partners'."""

    __slots__ = (
        "_cache",
        "_cache_max",
        "_clock",
        "_key",
        "_methods",
        "_partners",
        "_phones",
        "_secret",
        "campaign_id",
        "closes_at",
        "ttl_seconds",
    )

    def __init__(
        self,
        campaign_id: str,
        secret: bytes,
        *,
        ttl_seconds: int,
        closes_at: float,
        partners: Mapping[str, bytes],
        clock: Clock = system_clock,
        cache_max: int = 65536,
    ) -> None:
        for partner, key in partners.items():
            # "a:b" + "c" and "a" + "b:c" would hash to the same partner user.
            if not partner or ":" in partner or partner == ISSUER:
                raise ConfigError(f"partner id {partner!r}: not empty, no ':', not {ISSUER!r}")
            if len(key) < 32:
                raise ConfigError(f"the key of partner {partner!r} is shorter than 32 bytes")
        if ttl_seconds < 1 or cache_max < 1:
            raise ValueError("ttl_seconds and cache_max must be at least 1")
        self.campaign_id = campaign_id
        self.ttl_seconds = ttl_seconds
        self.closes_at = closes_at
        self._secret = secret
        self._key = derive_key(secret, "voter-token")
        self._partners = dict(partners)
        self._methods = {partner: f"partner:{partner}" for partner in partners}
        self._phones = PhoneHasher(secret)
        self._clock = clock
        self._cache_max = cache_max
        # token -> (voter, the instant it stops being valid); insertion order is age.
        self._cache: dict[str, tuple[Voter, float]] = {}

    def issue(self, phone_hash: str) -> tuple[str, int]:
        """A token for the voter whose phone hashes to ``phone_hash``, and its ``exp``.

        It lasts ``ttl_seconds``, and never past the campaign's close.
        """
        if not _HEX64.fullmatch(phone_hash):
            raise ValueError("phone_hash is not 64 lower-case hex digits")
        now = int(self._clock())
        exp = min(now + self.ttl_seconds, math.floor(self.closes_at))
        claims = {"iss": ISSUER, "aud": self.campaign_id, "sub": phone_hash, "iat": now, "exp": exp}
        return jwt.encode(claims, self._key, algorithm="HS256"), exp

    def voter(self, token: str) -> Voter:
        """The voter ``token`` stands for, or :class:`TokenInvalid`."""
        cached = self._cache.get(token)
        if cached is not None:
            if self._clock() < cached[1]:
                return cached[0]
            del self._cache[token]
            raise TokenInvalid("expired")
        voter, valid_until = self._verify(token)
        cache = self._cache
        if len(cache) >= self._cache_max:
            del cache[next(iter(cache))]
        cache[token] = (voter, valid_until)
        return voter

    def _verify(self, token: str) -> tuple[Voter, float]:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise TokenInvalid(f"not an ASCII string of at most {MAX_TOKEN_CHARS} characters")
        signing_input, _, signature = token.rpartition(".")
        issuer = _unverified_issuer(signing_input.partition(".")[2])
        # Our own tokens expire on time (we set exp); a partner's get the leeway.
        if issuer == ISSUER:
            key, leeway = self._key, 0
        elif isinstance(issuer, str) and issuer in self._partners:
            key, leeway = self._partners[issuer], LEEWAY
        else:
            raise TokenInvalid(f"unknown issuer {issuer!r:.80}")
        # One HMAC first, so that a forged or garbled token costs microseconds,
        # not PyJWT's parse (about 1 ms for 4 KiB); PyJWT then checks it all.
        mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
        expected = base64.urlsafe_b64encode(mac).rstrip(b"=")
        if not hmac.compare_digest(expected, signature.rstrip("=").encode()):
            raise TokenInvalid("bad signature")
        try:
            # PyJWT would check exp, iat and nbf against time.time(); they are
            # checked below against our clock instead (which tests drive).
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=_ALGORITHMS,
                audience=self.campaign_id,
                issuer=issuer,
                options={
                    "require": _REQUIRED,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "strict_aud": True,
                },
            )
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"{type(exc).__name__}: {exc}") from None

        iat, exp, nbf = claims["iat"], claims["exp"], claims.get("nbf", 0)
        if type(iat) is not int or type(exp) is not int or type(nbf) is not int:
            raise TokenInvalid("iat, exp and nbf must be integers")
        now = self._clock()
        if exp + leeway <= now:
            raise TokenInvalid("expired")
        if max(iat, nbf) > now + LEEWAY:
            raise TokenInvalid("not valid yet (iat or nbf in the future)")
        if exp - iat > self.ttl_seconds:
            raise TokenInvalid(f"lasts longer than {self.ttl_seconds} s (exp - iat)")

        sub = claims["sub"]
        if issuer == ISSUER:
            if not _HEX64.fullmatch(sub):
                raise TokenInvalid("sub is not a phone hash")
            return Voter(sub, "sms"), exp
        if not 0 < len(sub) <= _MAX_SUB_CHARS:
            raise TokenInvalid(f"sub is empty or longer than {_MAX_SUB_CHARS} characters")
        method = self._methods[issuer]
        if "phone_number" in claims:
            raw = claims["phone_number"]
            phone = normalize_phone(raw) if isinstance(raw, str) else None
            if phone is None:
                raise TokenInvalid("phone_number is not a mainland mobile number")
            return Voter(self._phones(phone), method), exp + leeway
        user = f"{_PARTNER_USER}{issuer}:{sub}".encode()
        return Voter(hmac.new(self._secret, user, hashlib.sha256).hexdigest(), method), exp + leeway


def _unverified_issuer(payload: str) -> object:
    """The ``iss`` of a token's payload segment, unchecked: it only picks the key."""
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        raise TokenInvalid("malformed payload") from None
    return claims.get("iss") if isinstance(claims, dict) else None
