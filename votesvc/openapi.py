"""``GET /openapi.json``: the HTTP API as an OpenAPI 3.1 document.

The document is built from what the handlers use, so the two cannot drift
apart unnoticed: every error's status and default message come from
:data:`~votesvc.errors.HTTP_ERRORS`, and each operation lists its codes in
the order its handler checks them (README, API). What a schema cannot say
(the order of checks, the 1 KiB body limit) is in the descriptions;
``tests/test_openapi.py`` fuzzes the running app against the document. Most of
this module is the document itself, which is why it is long.

It describes the running campaign's *kind*, never one campaign: a verified
campaign's votes carry a bearer token and may leave ``phone`` out, and only a
campaign verifying by ``"sms"`` has ``/v1/pow``, ``/v1/otp`` and
``/v1/otp/verify``. A client reading one document gets exactly the contract
of the service it talks to, and every campaign of a kind serves the same
bytes (its nominees, window and rules are in ``GET /v1/nominees``). Each
variant is built on its first request and kept for the process's life.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from votesvc import __version__
from votesvc.api import MAX_BODY
from votesvc.campaign import BIO_MAX, TITLE_MAX, Verification
from votesvc.errors import HTTP_ERRORS
from votesvc.otp import CODE_DIGITS
from votesvc.pages import ASSET_CACHE
from votesvc.responses import JSON
from votesvc.results import CACHE_CONTROL as RESULTS_CACHE

__all__ = ["openapi_document", "openapi_route"]

Schema = dict[str, Any]

# A mainland mobile number exactly as votesvc.phones.normalize_phone takes it:
# an optional +86 or 0086, then 1[3-9] and 9 digits, spaces and dashes anywhere.
_SEP = "[ -]*"
_PHONE = (
    f"^{_SEP}(?:\\+{_SEP}8{_SEP}6{_SEP}|0{_SEP}0{_SEP}8{_SEP}6{_SEP})?"
    f"1{_SEP}[3-9](?:{_SEP}[0-9]){{9}}{_SEP}$"
)
_RETRY_AFTER_STATUSES = (429, 503)  # every 429 and 503 of the API carries Retry-After
_ANY_TIME = frozenset(("unavailable", "internal_error"))  # not in a vote's order of checks


def openapi_route(verification: Verification) -> Route:
    """``GET /openapi.json`` for a campaign with this ``[verification]``."""
    verified, sms = verification.required, verification.sms
    headers = {"Cache-Control": ASSET_CACHE}

    async def openapi_json(request: Request) -> Response:
        return Response(_document_json(verified, sms), media_type=JSON, headers=headers)

    return Route("/openapi.json", openapi_json, methods=["GET"], name="openapi")


@functools.cache
def _document_json(verified: bool, sms: bool) -> bytes:
    return orjson.dumps(openapi_document(verified=verified, sms=sms))


def openapi_document(*, verified: bool, sms: bool) -> dict[str, Any]:
    """The document for a campaign whose votes need a token (``verified``), with
    or without the SMS flow (``sms``, which only a verified campaign has)."""
    paths: dict[str, Any] = {
        "/v1/votes": {"post": _vote(verified)},
        "/v1/nominees": {"get": _nominees()},
        "/v1/tally": {"get": _tally()},
        "/v1/tally/stream": {"get": _tally_stream()},
        "/v1/results": {"get": _results()},
    }
    if sms:
        paths["/v1/pow"] = {"get": _pow()}
        paths["/v1/otp"] = {"post": _otp()}
        paths["/v1/otp/verify"] = {"post": _otp_verify()}
    paths["/healthz"] = {"get": _healthz()}
    paths["/readyz"] = {"get": _readyz()}
    paths["/openapi.json"] = {"get": _openapi()}
    components: dict[str, Any] = {"schemas": _SCHEMAS, "headers": _HEADERS}
    if verified:
        components["securitySchemes"] = {"voterToken": _VOTER_TOKEN}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "votesvc",
            "version": __version__,
            "description": _describe(verified, sms),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [
            {"name": "votes", "description": "Casting votes and reading the tally."},
            {"name": "verification", "description": "Proving a phone by SMS for a voter token."},
            {"name": "health", "description": "Probes and this document."},
        ],
        "paths": paths,
        "components": components,
    }


def _describe(verified: bool, sms: bool) -> str:
    if not verified:
        kind = "a campaign without `[verification]`: votes are not verified"
    elif sms:
        kind = 'a verified campaign whose `[verification]` lists `"sms"`'
    else:
        kind = 'a verified campaign without `"sms"` (partner tokens only)'
    return (
        "A public voting service: votes in, a live tally out (README, API).\n\n"
        f"This document describes the service as it runs now, for {kind}; other kinds "
        "differ in `POST /v1/votes` and in whether the `/v1/pow` and `/v1/otp` endpoints "
        "exist. The campaign itself (nominees, window, rules) is `GET /v1/nominees`.\n\n"
        'Every error body is `{"error": {"code": "<stable_code>", "message": "<text>"}}`: '
        "`code` is stable, `message` is for people and may change. Besides the replies "
        "listed per operation, any request may get `404 not_found` (an unknown path), "
        "`405 method_not_allowed` (with `Allow`), `500 internal_error`, and, where "
        "`VOTESVC_CORS_ORIGINS` is set, a refused CORS preflight `400 cors_refused`. "
        f"Request bodies are JSON objects of at most {MAX_BODY} bytes."
    )


def _operation(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    responses: dict[str, Any],
    **more: Any,
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
        **more,
        "responses": dict(sorted(responses.items())),
    }


def _vote(verified: bool) -> dict[str, Any]:
    codes = ["unsupported_media_type", "payload_too_large", "invalid_json", "invalid_request"]
    codes.append("invalid_phone")
    if verified:
        codes += ["verification_required", "invalid_token", "phone_mismatch"]
    codes += ["unknown_nominee", "idempotency_conflict", "voting_closed", "rate_limited"]
    codes += ["already_voted", "daily_limit", "unavailable", "internal_error"]
    if verified:
        body = _ref("VerifiedVote")
        who = (
            "This campaign takes verified votes only: `Authorization: Bearer <token>`, "
            "votesvc's voter token (`POST /v1/otp/verify`) or a partner's signed token. "
            "The voter is the token's; `phone` may be left out, and if given it must be "
            "the token's phone (`phone_mismatch`). In a campaign without "
            '`[verification]` the body is exactly `{"nominee", "phone"}` and '
            "`Authorization` is ignored."
        )
    else:
        body = _ref("Vote")
        who = (
            'The body is exactly `{"nominee", "phone"}`; `Authorization` is ignored. '
            "In a verified campaign votes carry `Authorization: Bearer <token>` and "
            "`phone` may be left out."
        )
    more: dict[str, Any] = {}
    if verified:
        more["security"] = [{"voterToken": []}]
    return _operation(
        "castVote",
        "votes",
        "Cast a vote",
        f"{who}\n\nWhen several checks fail, the reply is the first in this order: "
        + ", ".join(f"`{code}`" for code in codes if code not in _ANY_TIME)
        + ". `503 unavailable` may come at any point after `unknown_nominee`: retry after "
        "`Retry-After` with the same `Idempotency-Key`, and the vote is counted once. Only "
        "a `201` changes a tally, a quota or the vote stream.",
        {
            "201": {
                "description": "Counted; or the stored reply of this voter's earlier vote "
                "with the same `Idempotency-Key` today, for the same nominee.",
                "content": {JSON: {"schema": _ref("VoteAccepted")}},
            },
            **_errors(
                codes,
                invalid_request=(
                    "Not an object of `nominee` (and optionally `phone`), both strings, "
                    "and nothing else"
                    if verified
                    else "Not an object of exactly `nominee` and `phone`, both strings"
                )
                + "; or a malformed `Idempotency-Key`.",
                voting_closed="Before `opens_at` or after `closes_at`, by the Redis "
                "server's clock; the attempt counts toward no limit.",
                rate_limited="The client IP or the voter is voting too fast.",
                daily_limit="The voter used today's votes (`Retry-After`: until the next "
                "campaign day).",
            ),
        },
        parameters=[
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "New for each vote the voter means to cast: the same voter "
                "sending it again the same campaign day gets the stored `201` again (same "
                "`vote_id`), counted toward no limit; for another nominee "
                "`409 idempotency_conflict`. Malformed: `400 invalid_request`.",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            }
        ],
        requestBody={"required": True, "content": {JSON: {"schema": body}}},
        **more,
    )


def _nominees() -> dict[str, Any]:
    return _operation(
        "getNominees",
        "votes",
        "The campaign and its nominees",
        "The campaign (id, title, time zone, voting window, rules, and in a verified "
        "campaign how voters verify) and its nominees, in the campaign file's order.",
        {
            "200": {"description": "The campaign.", "content": _json("Nominees")},
            **_errors(["internal_error"]),
        },
    )


def _tally() -> dict[str, Any]:
    cache = _header("public, max-age=1")
    return _operation(
        "getTally",
        "votes",
        "The live tally",
        "Sorted by votes, then id; equal votes share a rank (1, 2, 2, 4). Each process "
        "reads Redis once per refresh interval (0.5 s by default) whatever the number of "
        "pollers. While Redis is down the last tally is served with `stale: true`.",
        {
            "200": {
                "description": "The tally.",
                "headers": {"ETag": _ETAG, "Cache-Control": cache},
                "content": _json("Tally"),
            },
            "304": {
                "description": "No count has changed since the tally of `If-None-Match`.",
                "headers": {"ETag": _ETAG, "Cache-Control": cache},
            },
            **_errors(["unavailable", "internal_error"]),
        },
        parameters=[
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "An `ETag` of an earlier reply (or a list of them, or `*`): "
                "`304` while no count has changed. The ETag is derived from the counts "
                "only, so it is the same from every process.",
                "schema": {"type": "string"},
            }
        ],
    )


def _tally_stream() -> dict[str, Any]:
    return _operation(
        "streamTally",
        "votes",
        "The live tally, pushed (Server-Sent Events)",
        "Unnamed `data:` events, each the JSON of `GET /v1/tally`: the current tally at "
        "once, then the newest after every change, at most twice a second; an idle "
        "stream gets a `: heartbeat` comment every 15 s (`VOTESVC_SSE_HEARTBEAT`). "
        "The stream ends when the server shuts down; an `EventSource` reconnects by itself.",
        {
            "200": {
                "description": "The stream.",
                "headers": {"Cache-Control": _header("no-store")},
                "content": {
                    "text/event-stream": {
                        "schema": {
                            "type": "string",
                            "description": "`retry: 2000`, then `data: <Tally JSON>` events "
                            "and `: heartbeat` comments.",
                        }
                    }
                },
            },
            **_errors(
                ["unavailable", "internal_error"],
                unavailable="No tally yet, `VOTESVC_SSE_MAX` streams open in this process, "
                "or the server is shutting down.",
            ),
        },
    )


def _results() -> dict[str, Any]:
    cache = _header(RESULTS_CACHE)
    return _operation(
        "getResults",
        "votes",
        "The certified result",
        "Before the organisers certify the result (after voting closes): "
        '`{"campaign", "certified": false}`. After: the winners of the award (the first '
        "`seats` places), as certified from the ledger; `place` is equal for nominees the tie "
        "rule did not separate. A certified result never changes. Each process reads the "
        "ledger at most every 2 s until it is certified.",
        {
            "200": {
                "description": "The result, or that it is not certified yet.",
                "headers": {"ETag": _ETAG_BODY, "Cache-Control": cache},
                "content": _json("Results"),
            },
            "304": {
                "description": "The result is still the one of `If-None-Match`.",
                "headers": {"ETag": _ETAG_BODY, "Cache-Control": cache},
            },
            **_errors(
                ["unavailable", "internal_error"],
                unavailable="The ledger has not answered this process yet.",
            ),
        },
        parameters=[
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "An `ETag` of an earlier reply (or a list of them, or `*`): "
                "`304` while the result is the same.",
                "schema": {"type": "string"},
            }
        ],
    )


_ONLY_SMS = (
    'This endpoint exists only in a campaign whose `[verification]` lists `"sms"`; '
    "elsewhere it answers `404 not_found`, as any unknown path does."
)


def _pow() -> dict[str, Any]:
    return _operation(
        "getPowChallenge",
        "verification",
        "A proof-of-work challenge (ALTCHA v1)",
        "Find the `number` in `0..maxNumber` for which SHA-256(`salt` + number in "
        "decimal) is `challenge`, and send the solution to `POST /v1/otp` as `pow`: the "
        "base64 of the JSON object of `algorithm`, `challenge`, `number`, `salt` and "
        "`signature`, as the ALTCHA widget does. Valid for 5 minutes, taken once. "
        f"{_ONLY_SMS} With `pow_max_number = 0` there is no proof of work and this "
        "answers `404 not_found`.",
        {
            "200": {
                "description": "A new challenge.",
                "headers": {"Cache-Control": _header("no-store")},
                "content": _json("PowChallenge"),
            },
            **_errors(
                ["not_found", "internal_error"],
                not_found="This campaign asks for no proof of work.",
            ),
        },
    )


def _otp() -> dict[str, Any]:
    return _operation(
        "sendCode",
        "verification",
        "Send a one-time code by SMS",
        f"Sends a new {CODE_DIGITS}-digit code to the phone (it replaces the previous "
        f"one), after a proof of work (`GET /v1/pow`) unless the campaign asks for none. "
        f"{_ONLY_SMS}",
        {
            "202": {"description": "Sent.", "content": _json("CodeSent")},
            **_errors(
                [
                    "unsupported_media_type",
                    "payload_too_large",
                    "invalid_json",
                    "invalid_request",
                    "invalid_phone",
                    "pow_required",
                    "pow_invalid",
                    "voting_closed",
                    "rate_limited",
                    "daily_limit",
                    "sms_budget_exhausted",
                    "sms_unavailable",
                    "unavailable",
                    "internal_error",
                ],
                invalid_request="Not an object of `phone` (and optionally `pow`), both "
                "strings, and nothing else.",
                rate_limited="A code was sent to this phone less than `resend_seconds` ago, "
                "or the client IP or its network (IPv4 /24, IPv6 /48) asked for too many "
                "codes this hour.",
                daily_limit="The phone was sent `sends_per_phone_per_day` codes today "
                "(`Retry-After`: the next campaign day).",
                sms_unavailable="The SMS sender failed: the attempt counts against no "
                "limit, and the previous code stays valid.",
            ),
        },
        requestBody={"required": True, "content": _json("CodeRequest")},
    )


def _otp_verify() -> dict[str, Any]:
    return _operation(
        "verifyCode",
        "verification",
        "Trade a right code for a voter token",
        "A right code is used up (a code verifies once) and answers votesvc's voter "
        "token for the phone, for `Authorization: Bearer` on `POST /v1/votes`. Every "
        "attempt that reaches the code counts toward the client IP's hourly limit. "
        f"{_ONLY_SMS}",
        {
            "200": {
                "description": "The right code: the voter token.",
                "headers": {"Cache-Control": _header("no-store")},
                "content": _json("VoterToken"),
            },
            **_errors(
                [
                    "unsupported_media_type",
                    "payload_too_large",
                    "invalid_json",
                    "invalid_request",
                    "invalid_phone",
                    "rate_limited",
                    "invalid_code",
                    "code_expired",
                    "unavailable",
                    "internal_error",
                ],
                invalid_request=f"Not an object of `phone` and `code`, both strings, and "
                f"nothing else; or `code` is not {CODE_DIGITS} digits (no try is counted).",
                rate_limited="The client IP made `verifies_per_ip_per_hour` attempts this hour.",
                invalid_code="The code is wrong; `attempts_left` says how many tries the "
                "code has left.",
            ),
        },
        requestBody={"required": True, "content": _json("CodeCheck")},
    )


def _healthz() -> dict[str, Any]:
    return _operation(
        "healthz",
        "health",
        "Liveness",
        "The process is alive; it says nothing about Redis (`/readyz` does).",
        {
            "200": {
                "description": "Alive.",
                "content": {JSON: {"schema": _object({"status": {"const": "ok"}})}},
            },
            **_errors(["internal_error"]),
        },
    )


def _readyz() -> dict[str, Any]:
    return _operation(
        "readyz",
        "health",
        "Readiness: votes can be taken now",
        "Redis answers, the scripts are loaded, Redis holds the campaign's data and the "
        "campaign is set up; `redis` is `INFO memory` of every master (a cluster: the "
        "masters' sums, `maxmemory` 0 when one has no limit, `mixed` when their "
        "policies differ). A policy that may evict keys answers `503` unless "
        "`VOTESVC_ALLOW_EVICTION=true`.",
        {
            "200": {"description": "Ready.", "content": _json("Ready")},
            "503": {
                "description": "Not ready: `reason` says why (`Retry-After`, except for "
                "`redis_may_evict`, which no retry will mend).",
                "headers": {"Retry-After": {**_HEADERS["RetryAfter"], "required": False}},
                "content": _json("NotReady"),
            },
            **_errors(["internal_error"]),
        },
    )


def _openapi() -> dict[str, Any]:
    return _operation(
        "getOpenApi",
        "health",
        "This document",
        "OpenAPI 3.1, for the kind of campaign the service runs.",
        {
            "200": {
                "description": "The document.",
                "headers": {"Cache-Control": _header(ASSET_CACHE)},
                "content": {JSON: {"schema": {"type": "object"}}},
            }
        },
    )


def _errors(codes: list[str], **descriptions: str) -> dict[str, Any]:
    """The error replies of an operation: its ``codes`` grouped by status, each
    described by its default message unless ``descriptions`` names it."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(HTTP_ERRORS[code][0], []).append(code)
    replies = {}
    for status, group in by_status.items():
        lines = [f"`{code}`: {descriptions.get(code, HTTP_ERRORS[code][1])}" for code in group]
        reply: dict[str, Any] = {
            "description": "\n\n".join(lines),
            "content": {JSON: {"schema": _error_body(group)}},
        }
        if status in _RETRY_AFTER_STATUSES:
            reply["headers"] = {"Retry-After": _ref("RetryAfter", "headers")}
        elif status == 401:
            reply["headers"] = {"WWW-Authenticate": _ref("WwwAuthenticate", "headers")}
        replies[str(status)] = reply
    return replies


def _error_body(codes: list[str]) -> Schema:
    error = _object({"code": {"enum": codes}, "message": {"type": "string"}})
    if "invalid_code" in codes:  # the one code whose error carries more
        error["properties"]["attempts_left"] = {
            "type": "integer",
            "minimum": 0,
            "description": "Wrong tries left before the code dies (`invalid_code` only).",
        }
        error["if"] = {"properties": {"code": {"const": "invalid_code"}}}
        error["then"] = {"required": ["attempts_left"]}
        error["else"] = {"not": {"required": ["attempts_left"]}}
    return _object({"error": error})


def _object(properties: dict[str, Any], *optional: str, **more: Any) -> Schema:
    """A JSON object of exactly ``properties`` (all required but ``optional``)."""
    required = [name for name in properties if name not in optional]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **more,
    }


def _ref(name: str, kind: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(name: str) -> dict[str, Any]:
    return {JSON: {"schema": _ref(name)}}


def _header(value: str) -> dict[str, Any]:
    return {"required": True, "schema": {"type": "string", "const": value}}


_STRING = {"type": "string"}
_COUNT = {"type": "integer", "minimum": 0}
_POSITIVE = {"type": "integer", "minimum": 1}
_PHONE_FIELD = {
    "type": "string",
    "pattern": _PHONE,
    "description": "A mainland mobile number: `1[3-9]` and 9 digits, optionally after "
    "`+86` or `0086`; spaces and dashes are ignored. Otherwise `400 invalid_phone`.",
    "examples": ["13800138000"],
}
_NOMINEE_FIELD = {
    "type": "string",
    "description": "A nominee's id (`GET /v1/nominees`); another: `404 unknown_nominee`.",
    "examples": ["N07"],
}
_ETAG = {
    "required": True,
    "description": "Weak, derived from the counts only: the same from every process.",
    "schema": {"type": "string", "pattern": '^W/"[0-9a-f]{20}"$'},
}

_ETAG_BODY = {
    "required": True,
    "description": "Weak, derived from the body: the same from every process.",
    "schema": {"type": "string", "pattern": '^W/"[0-9a-f]{20}"$'},
}

_HEADERS: dict[str, Any] = {
    "RetryAfter": {
        "required": True,
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "WwwAuthenticate": {
        "required": True,
        "description": "The scheme to authenticate with (RFC 6750).",
        "schema": {"type": "string", "const": "Bearer"},
    },
}

_VOTER_TOKEN = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "votesvc's voter token (`POST /v1/otp/verify`), or a partner's token "
    "signed with its key (HS256; README, Tokens). Missing: `401 verification_required`; "
    "malformed, wrongly signed, another campaign's or expired: `401 invalid_token`.",
}

_SCHEMAS: dict[str, Any] = {
    "Vote": _object(
        {"nominee": _NOMINEE_FIELD, "phone": _PHONE_FIELD},
        description="An unverified campaign's vote: exactly these two strings.",
    ),
    "VerifiedVote": _object(
        {"nominee": _NOMINEE_FIELD, "phone": _PHONE_FIELD},
        "phone",
        description="A verified campaign's vote: the voter is the bearer token's; "
        "`phone`, if given, must be the token's.",
    ),
    "VoteAccepted": _object(
        {
            "vote_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "nominee": _STRING,
            "remaining_today": {
                **_COUNT,
                "description": "Votes this voter has left today (the campaign's day).",
            },
        }
    ),
    "Nominees": _object(
        {
            "campaign": _object(
                {
                    "id": _STRING,
                    "title": _STRING,
                    "timezone": {**_STRING, "description": "IANA, e.g. `Asia/Shanghai`."},
                    "opens_at": {"type": "string", "format": "date-time"},
                    "closes_at": {"type": "string", "format": "date-time"},
                    "rules": _object(
                        {
                            "award_seats": {
                                **_POSITIVE,
                                "description": "Places that receive the award (the top N).",
                            },
                            "votes_per_phone_per_day": _POSITIVE,
                            "votes_per_nominee_per_phone_per_day": _POSITIVE,
                            "phone_burst_limit": _POSITIVE,
                            "phone_burst_seconds": _POSITIVE,
                            "ip_limit": _POSITIVE,
                            "ip_limit_seconds": _POSITIVE,
                        }
                    ),
                    "verification": _object(
                        {
                            "methods": {
                                "type": "array",
                                "items": {"enum": ["sms", "partner"]},
                                "minItems": 1,
                                "uniqueItems": True,
                            },
                            "code_ttl_seconds": _POSITIVE,
                            "resend_seconds": _POSITIVE,
                            "pow": {
                                "type": "boolean",
                                "description": "Whether `POST /v1/otp` needs a proof of work.",
                            },
                        },
                        description="Present only in a verified campaign.",
                    ),
                },
                "verification",
            ),
            "nominees": {
                "type": "array",
                "items": _object(
                    {
                        "id": _STRING,
                        "name": _STRING,
                        "trade": _STRING,
                        "employer": _STRING,
                        "title": {
                            "type": ["string", "null"],
                            "maxLength": TITLE_MAX,
                            "description": "A title such as 高级技师; `null`: none given.",
                        },
                        "bio": {
                            "type": ["string", "null"],
                            "maxLength": BIO_MAX,
                            "description": "A short account of the nominee's work; `null`: none.",
                        },
                        "photo_url": {
                            "type": ["string", "null"],
                            "pattern": "^/media/[A-Za-z0-9_-]+-[0-9a-f]{16}[.]webp$",
                            "description": "The nominee's photo, a square WebP served with "
                            "`Cache-Control: immutable` (a new photo gets a new URL); `null`: "
                            "none.",
                        },
                    }
                ),
            },
        }
    ),
    "Tally": _object(
        {
            "campaign": _STRING,
            "as_of": {"type": "string", "format": "date-time"},
            "stale": {
                "type": "boolean",
                "description": "Redis could not be read: the last counts known.",
            },
            "total": _COUNT,
            "nominees": {
                "type": "array",
                "items": _object(
                    {
                        "id": _STRING,
                        "name": _STRING,
                        "trade": _STRING,
                        "votes": _COUNT,
                        "rank": {"type": "integer", "minimum": 1},
                    }
                ),
            },
        }
    ),
    "Results": {
        "oneOf": [
            _object(
                {"campaign": _STRING, "certified": {"const": False}},
                description="Not certified yet.",
            ),
            _object(
                {
                    "campaign": _STRING,
                    "certified": {"const": True},
                    "certified_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "In the campaign's time zone, with its offset.",
                    },
                    "seats": {**_POSITIVE, "description": "Places that receive the award."},
                    "winners": {
                        "type": "array",
                        "items": _object(
                            {
                                "place": {
                                    "type": "integer",
                                    "minimum": 1,
                                    "description": "Equal for nominees the tie rule did not "
                                    "separate (equal votes reached at the same instant).",
                                },
                                "id": _STRING,
                                "name": _STRING,
                                "trade": _STRING,
                                "votes": _COUNT,
                            }
                        ),
                    },
                    "tie_rule": _STRING,
                },
                description="Certified: the award's winners, in order.",
            ),
        ]
    },
    "PowChallenge": _object(
        {
            "algorithm": {"const": "SHA-256"},
            "challenge": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "maxNumber": _POSITIVE,
            "salt": {**_STRING, "description": "Carries the expiry (`?expires=<epoch s>`)."},
            "signature": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        }
    ),
    "CodeRequest": _object(
        {
            "phone": _PHONE_FIELD,
            "pow": {
                "type": "string",
                "contentEncoding": "base64",
                "contentMediaType": "application/json",
                "description": "The solved `GET /v1/pow` challenge. Missing while the "
                "campaign asks for one: `400 pow_required`; wrong, expired or already "
                "used: `400 pow_invalid`. Ignored when it asks for none.",
            },
        },
        "pow",
    ),
    "CodeSent": _object(
        {
            "expires_in": {**_POSITIVE, "description": "Seconds the code stays valid."},
            "resend_after": {**_POSITIVE, "description": "Seconds before another code."},
        }
    ),
    "CodeCheck": _object(
        {
            "phone": _PHONE_FIELD,
            "code": {
                "type": "string",
                "pattern": f"^[0-9]{{{CODE_DIGITS}}}$",
                "description": f"The {CODE_DIGITS} digits sent by SMS; anything else is "
                "`400 invalid_request`, and no try is counted.",
            },
        }
    ),
    "VoterToken": _object(
        {
            "token": {**_STRING, "description": "A JWT; treat it as opaque."},
            "expires_at": {"type": "string", "format": "date-time"},
        }
    ),
    "Ready": _object(
        {
            "status": {"const": "ready"},
            "redis": _object(
                {
                    "used_memory": _COUNT,
                    "maxmemory": {**_COUNT, "description": "0: no limit."},
                    "policy": {**_STRING, "description": "`maxmemory-policy`, or `mixed`."},
                }
            ),
        }
    ),
    "NotReady": _object(
        {
            "status": {"const": "not_ready"},
            "reason": {
                "enum": [
                    "redis_unreachable",
                    "redis_data_lost",
                    "campaign_not_set_up",
                    "redis_may_evict",
                ],
                "description": "Stable, for probes: `redis_data_lost` waits for `votesvc restore`.",
            },
            "error": _object({"code": {"const": "unavailable"}, "message": _STRING}),
        }
    ),
}
