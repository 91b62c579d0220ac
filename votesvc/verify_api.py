"""HTTP handlers of the verified-voter flow: ``/v1/pow``, ``/v1/otp``, ``/v1/otp/verify``.

A voter proves a phone by a one-time SMS code and gets votesvc's voter token
(:mod:`votesvc.tokens`), which votes then carry as ``Authorization: Bearer``.
Asking for a code costs a proof of work first (:mod:`votesvc.pow`), unless
the campaign turned it off. These routes exist only in a campaign whose
``[verification]`` lists ``"sms"``; elsewhere they answer ``404 not_found``
as any unknown path does.

Checks run in the documented order (README, API): 415, 413, ``invalid_json``,
``invalid_request``, ``invalid_phone``, then each endpoint's own.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from votesvc.api import MAX_BODY, is_json
from votesvc.campaign import Campaign
from votesvc.clientip import ClientIP, keep_last_hops
from votesvc.errors import RedisUnavailable, VoteError, http_error
from votesvc.metrics import Metrics
from votesvc.otp import CODE_DIGITS, OneTimeCodes
from votesvc.phones import PhoneHasher, normalize_phone
from votesvc.pow import PowInvalid, ProofOfWork
from votesvc.responses import error_response, json_response
from votesvc.tokens import VoterTokens

__all__ = ["VerificationApi"]

log = logging.getLogger(__name__)

_RETRY = 1
_OTP_FIELDS = frozenset(("phone", "pow"))
_VERIFY_FIELDS = frozenset(("phone", "code"))
_DIGITS = frozenset("0123456789")


class VerificationApi:
    """The three endpoints of one campaign's SMS flow."""

    def __init__(
        self,
        campaign: Campaign,
        codes: OneTimeCodes,
        pow_gate: ProofOfWork | None,
        tokens: VoterTokens,
        client_ip: ClientIP,
        secret: bytes,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.campaign = campaign
        self.codes = codes
        self.pow_gate = pow_gate  # None: no proof of work (pow_max_number = 0)
        self.tokens = tokens
        self.client_ip = client_ip
        self.hash_phone = PhoneHasher(secret)
        self._use_forwarded = bool(campaign.rules.trusted_proxies)

    async def pow(self, request: Request) -> Response:
        """``GET /v1/pow``: a fresh ALTCHA v1 challenge."""
        if self.pow_gate is None:
            return error_response(
                http_error("not_found", "This campaign asks for no proof of work.")
            )
        return json_response(self.pow_gate.challenge(), headers={"Cache-Control": "no-store"})

    async def otp(self, request: Request) -> Response:
        """``POST /v1/otp``: send a one-time code to a phone."""
        codes = self.codes
        try:
            data = await _json_object(request, required=frozenset(("phone",)), allowed=_OTP_FIELDS)
            phone = _phone(data)
            pow_used = self._check_pow(data.get("pow"))
            ip_hash, prefix_hash = self._client(request)
            sent = await codes.send(phone, self.hash_phone(phone), ip_hash, prefix_hash, pow_used)
        except VoteError as error:
            return self._refused(error, sends=True)
        except RedisUnavailable:
            return self._refused(http_error("unavailable", retry_after=_RETRY), sends=True)
        if self.metrics is not None:
            self.metrics.otp_sends.labels("sent").inc()
        body = {"expires_in": sent.expires_in, "resend_after": sent.resend_after}
        return json_response(body, 202)

    async def verify(self, request: Request) -> Response:
        """``POST /v1/otp/verify``: trade a right code for a voter token."""
        codes = self.codes
        try:
            data = await _json_object(request, required=_VERIFY_FIELDS, allowed=_VERIFY_FIELDS)
            code = data["code"]
            if len(code) != CODE_DIGITS or not _DIGITS.issuperset(code):
                raise http_error("invalid_request", "code must be exactly 6 digits 0-9.")
            phone_hash = self.hash_phone(_phone(data))
            ip_hash, _ = self._client(request)
            await codes.verify(phone_hash, code, ip_hash)
        except VoteError as error:
            return self._refused(error, sends=False)
        except RedisUnavailable:
            return self._refused(http_error("unavailable", retry_after=_RETRY), sends=False)
        if self.metrics is not None:
            self.metrics.otp_verifies.labels("verified").inc()
        token, expires = self.tokens.issue(phone_hash)
        expires_at = datetime.fromtimestamp(expires, self.campaign.timezone).isoformat()
        return json_response(
            {"token": token, "expires_at": expires_at}, headers={"Cache-Control": "no-store"}
        )

    def _refused(self, error: VoteError, *, sends: bool) -> Response:
        """The error reply, counted by its code."""
        if self.metrics is not None:
            counter = self.metrics.otp_sends if sends else self.metrics.otp_verifies
            counter.labels(error.code).inc()
        return error_response(error)

    def _check_pow(self, payload: Any) -> tuple[str, int] | None:
        """The proof of work's (replay id, expiry), None when none is asked for."""
        if self.pow_gate is None:
            return None
        if payload is None:
            raise http_error("pow_required")
        try:
            return self.pow_gate.check(payload)
        except PowInvalid as exc:
            log.info("proof of work refused: %s", exc)
            raise http_error("pow_invalid") from None

    def _client(self, request: Request) -> tuple[str, str]:
        """(IP hash, network prefix hash) of the request's client."""
        client = request.client
        peer = client.host if client else None
        forwarded = None
        if self._use_forwarded:
            hops = request.headers.getlist("x-forwarded-for")
            if hops:
                forwarded = keep_last_hops(",".join(hops).encode("latin-1")).decode("latin-1")
        return self.client_ip.key(peer, forwarded), self.client_ip.prefix_key(peer, forwarded)


async def _json_object(
    request: Request, *, required: frozenset[str], allowed: frozenset[str]
) -> dict[str, Any]:
    """The request's JSON object of string fields: 415, 413, invalid_json, invalid_request."""
    if not is_json(request.headers.get("content-type")):
        raise http_error("unsupported_media_type")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise http_error("payload_too_large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise http_error("payload_too_large")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise http_error("invalid_json") from None
    fields = ", ".join(sorted(required))
    expected = f"Expected a JSON object with {fields}"
    if allowed != required:
        expected += f" (and optionally {', '.join(sorted(allowed - required))})"
    if (
        not isinstance(data, dict)
        or not required <= data.keys() <= allowed
        or not all(isinstance(value, str) for value in data.values())
    ):
        raise http_error("invalid_request", f"{expected}, all strings, and nothing else.")
    return data


def _phone(data: dict[str, Any]) -> str:
    phone = normalize_phone(data["phone"])
    if phone is None:
        raise http_error("invalid_phone")
    return phone
