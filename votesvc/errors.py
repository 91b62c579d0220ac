"""Every error votesvc raises on purpose, and the HTTP reply each one maps to.

Clients see ``{"error": {"code": ..., "message": ...}}``; ``code`` is stable
and documented, ``message`` is for people and may change.
"""

from __future__ import annotations

import orjson

__all__ = [
    "HTTP_ERRORS",
    "CampaignError",
    "ConfigError",
    "NotReady",
    "RedisUnavailable",
    "VoteError",
    "VotesvcError",
    "error_body",
    "error_json",
    "http_error",
]


class VotesvcError(Exception):
    """Root of every votesvc exception."""


class ConfigError(VotesvcError):
    """Settings or the environment are wrong; start-up stops with this message."""


class CampaignError(ConfigError):
    """The campaign file is malformed; the message names the problem."""


class RedisUnavailable(VotesvcError):
    """Redis could not be reached or failed to answer in time."""


class NotReady(RedisUnavailable):
    """The service cannot take votes yet; ``reason`` is a stable code for /readyz."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class VoteError(VotesvcError):
    """An error with an HTTP reply: a status, a stable code and a message."""

    __slots__ = ("code", "details", "headers", "message", "retry_after", "status")

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        retry_after: int | None = None,
        *,
        details: dict[str, int] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.details = details  # more fields of the error object (invalid_code's attempts_left)
        self.headers = headers  # more reply headers (a 401's WWW-Authenticate)


# The stable codes of the HTTP API, their status and default message.
HTTP_ERRORS: dict[str, tuple[int, str]] = {
    "invalid_json": (400, "The request body is not valid JSON."),
    "invalid_request": (
        400,
        'Expected a JSON object {"nominee": "<id>", "phone": "<mobile number>"} and nothing else.',
    ),
    "cors_refused": (400, "This origin, method or header is not allowed by CORS."),
    "invalid_phone": (
        400,
        "phone must be a mainland China mobile number: 11 digits starting 13-19, "
        "optionally after +86 or 0086.",
    ),
    "pow_required": (
        400,
        "This campaign asks for a proof of work: GET /v1/pow, solve it, send pow.",
    ),
    "pow_invalid": (400, "The proof of work is wrong, expired or already used: solve a new one."),
    "invalid_code": (400, "The code is wrong."),
    "code_expired": (
        400,
        "There is no live code for this phone (expired, used, or too many wrong tries): "
        "ask for a new one.",
    ),
    "phone_mismatch": (400, "This phone is not the one the token was issued for."),
    "verification_required": (
        401,
        "This campaign takes verified votes only: send Authorization: Bearer <token>.",
    ),
    "invalid_token": (
        401,
        "The token is malformed, expired, for another campaign or wrongly signed: "
        "verify the phone again.",
    ),
    "voting_closed": (403, "Voting is closed."),
    "unknown_nominee": (404, "There is no nominee with this id."),
    "not_found": (404, "There is nothing at this address."),
    "method_not_allowed": (405, "This method is not allowed here."),
    "already_voted": (409, "This phone has already voted for this nominee today."),
    "idempotency_conflict": (
        409,
        "This Idempotency-Key was already used by this phone today for another nominee.",
    ),
    "payload_too_large": (413, "The request body is larger than 1 KiB."),
    "unsupported_media_type": (415, "Send the request body as application/json."),
    "rate_limited": (429, "Too many votes in a short time; retry after Retry-After seconds."),
    "daily_limit": (429, "This phone has used all of today's votes; more tomorrow."),
    "internal_error": (500, "Internal error; it has been logged."),
    "sms_unavailable": (
        502,
        "The SMS could not be sent; nothing was counted and an earlier code stays valid. "
        "Retry shortly.",
    ),
    "unavailable": (503, "The vote service is briefly unavailable; retry after Retry-After."),
    "sms_budget_exhausted": (
        503,
        "The campaign's SMS budget for this minute is spent; retry after Retry-After.",
    ),
}


def http_error(
    code: str,
    message: str | None = None,
    retry_after: int | None = None,
    *,
    details: dict[str, int] | None = None,
) -> VoteError:
    """The :class:`VoteError` for a stable ``code`` of :data:`HTTP_ERRORS`."""
    status, default = HTTP_ERRORS[code]
    headers = _BEARER if status == 401 else None
    return VoteError(
        status, code, message or default, retry_after, details=details, headers=headers
    )


_BEARER = {"WWW-Authenticate": "Bearer"}  # RFC 6750: every 401 names the scheme


def error_json(error: VoteError) -> dict[str, dict[str, str | int]]:
    """Every error reply's body: ``{"error": {"code": ..., "message": ...}}``
    (and, for some codes, more fields: ``invalid_code`` has ``attempts_left``)."""
    body: dict[str, str | int] = {"code": error.code, "message": error.message}
    if error.details:
        body.update(error.details)
    return {"error": body}


def error_body(error: VoteError) -> bytes:
    """:func:`error_json`, serialised."""
    return orjson.dumps(error_json(error))
