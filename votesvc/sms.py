"""SMS senders: how a one-time code reaches a voter's phone.

votesvc sends no SMS itself. ``VOTESVC_SMS_SENDER`` picks a sender:

- ``log``: writes the code to the log (phone masked), for development;
- ``webhook:<URL>``: POSTs the code as JSON to a gateway the organiser runs,
  which talks to its SMS provider. The request is signed: the header
  ``X-Votesvc-Signature`` is ``sha256=`` and the hex HMAC-SHA256, under
  ``VOTESVC_SMS_WEBHOOK_SECRET``, of ``"<X-Votesvc-Timestamp>." + body``;
  :func:`verify_signature` checks it. Any 2xx reply means sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from votesvc.days import Clock, system_clock
from votesvc.errors import ConfigError

__all__ = [
    "LogSender",
    "SmsFailed",
    "SmsSender",
    "WebhookSender",
    "build_sender",
    "mask_phone",
    "verify_signature",
]

logger = logging.getLogger(__name__)

_WEBHOOK = "webhook:"
_SIGNATURE_PREFIX = "sha256="


class SmsFailed(Exception):
    """The code was not handed over; the message says why, never the phone or the code."""


class SmsSender(Protocol):
    async def send(self, campaign_id: str, phone: str, code: str, ttl_seconds: int) -> None:
        """Deliver ``code`` to ``phone`` (11 digits, normalised) or raise :class:`SmsFailed`."""

    async def aclose(self) -> None:
        """Release connections; the sender may still be used afterwards."""


def mask_phone(phone: str) -> str:
    """``138****8000``: the first 3 and last 4 digits of an 11-digit number."""
    if len(phone) != 11:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[7:]}"


def verify_signature(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` (``X-Votesvc-Signature``) signs ``timestamp`` and ``body``.

    Constant-time. A gateway should also refuse a timestamp more than a few
    minutes from its own clock, so that a captured request cannot be replayed.
    """
    if not (timestamp.isascii() and signature.isascii()):
        return False
    expected = _SIGNATURE_PREFIX + _mac(secret, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii"))


def _mac(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class LogSender:
    """Writes the code to the log at WARNING (``SMS to 138****8000: 123456``); development only."""

    async def send(self, campaign_id: str, phone: str, code: str, ttl_seconds: int) -> None:
        logger.warning("SMS to %s: %s", mask_phone(phone), code)

    async def aclose(self) -> None:
        pass


class WebhookSender:
    """POSTs each code, signed, to the organiser's SMS gateway.

    Body: ``{"campaign": ..., "phone": "+8613800138000", "code": "123456",
    "ttl_seconds": 300}``. Redirects are not followed; proxy variables in the
    environment are ignored (the URL is used as given).
    """

    __slots__ = ("_client", "_clock", "_secret", "_timeout", "url")

    def __init__(
        self, url: str, secret: bytes, *, timeout: float = 3.0, clock: Clock = system_clock
    ) -> None:
        if not secret:
            raise ValueError("the webhook secret is empty")
        self.url = url
        self._secret = secret
        self._timeout = timeout
        self._clock = clock
        # Made by the first send(), inside the running loop; nothing opens before.
        self._client: httpx.AsyncClient | None = None

    async def send(self, campaign_id: str, phone: str, code: str, ttl_seconds: int) -> None:
        body = orjson.dumps(
            {
                "campaign": campaign_id,
                "phone": "+86" + phone,
                "code": code,
                "ttl_seconds": ttl_seconds,
            }
        )
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "X-Votesvc-Timestamp": timestamp,
            "X-Votesvc-Signature": _SIGNATURE_PREFIX + _mac(self._secret, timestamp, body),
        }
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, trust_env=False
            )
        try:
            # httpx's timeout bounds each phase (connect, write, read); this bounds the whole.
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(self.url, content=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise SmsFailed(f"SMS webhook: no answer within {self._timeout:g} s") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SmsFailed(f"SMS webhook: {type(exc).__name__}") from exc
        if not response.is_success:
            raise SmsFailed(f"SMS webhook answered HTTP {response.status_code}")

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def build_sender(spec: str | None, webhook_secret: bytes | None) -> SmsSender | None:
    """The sender ``VOTESVC_SMS_SENDER`` names (``spec``), or None when it is unset."""
    if spec is None:
        return None
    if spec == "log":
        return LogSender()
    if spec.startswith(_WEBHOOK) and _is_http_url(url := spec[len(_WEBHOOK) :]):
        if not webhook_secret:
            raise ConfigError(
                "VOTESVC_SMS_SENDER=webhook:... needs VOTESVC_SMS_WEBHOOK_SECRET "
                "(the key the gateway checks each request's signature with)"
            )
        return WebhookSender(url, webhook_secret)
    raise ConfigError(f"VOTESVC_SMS_SENDER={spec!r} must be log or webhook:<http(s) URL>")


def _is_http_url(url: str) -> bool:
    if not url.isprintable() or " " in url:
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
