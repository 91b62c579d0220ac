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

    __slots__ = ("code", "message", "retry_after", "status")

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


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
    "unavailable": (503, "The vote service is briefly unavailable; retry after Retry-After."),
}


def http_error(code: str, message: str | None = None, retry_after: int | None = None) -> VoteError:
    """The :class:`VoteError` for a stable ``code`` of :data:`HTTP_ERRORS`."""
    status, default = HTTP_ERRORS[code]
    return VoteError(status, code, message or default, retry_after)


def error_json(error: VoteError) -> dict[str, dict[str, str]]:
    """Every error reply's body: ``{"error": {"code": ..., "message": ...}}``."""
    return {"error": {"code": error.code, "message": error.message}}


def error_body(error: VoteError) -> bytes:
    """:func:`error_json`, serialised."""
    return orjson.dumps(error_json(error))
