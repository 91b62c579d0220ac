"""HTTP handlers of API v1: parse, call the domain, shape the reply.

The order of checks on ``POST /v1/votes`` is part of the contract: 415, 413,
``invalid_json``, ``invalid_request`` (the body, then the ``Idempotency-Key``
header), ``invalid_phone``; in a verified campaign then ``verification_required``
and ``invalid_token`` (both 401; checking a token costs no Redis call) and
``phone_mismatch``; then ``unknown_nominee``, then what the vote script
decides: a key this phone already used today (the same ``201`` again, or
``idempotency_conflict``), ``voting_closed`` (by Redis's clock),
``rate_limited`` for the IP, then the phone's burst, ``already_voted``,
``daily_limit``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from votesvc.campaign import Campaign
from votesvc.clientip import FORWARDED_MAX, ClientIP, keep_last_hops
from votesvc.days import Clock, DayCalendar
from votesvc.errors import (
    ConfigError,
    NotReady,
    RedisUnavailable,
    VoteError,
    error_json,
    http_error,
)
from votesvc.hotpath import Headers, Reply, error_reply, json_reply
from votesvc.metrics import VoteStats
from votesvc.phones import PhoneHasher, normalize_phone
from votesvc.redismemory import RedisMemory
from votesvc.responses import JSON, json_response
from votesvc.tally import Snapshot, TallyBoard
from votesvc.tokens import TokenInvalid, VoterTokens
from votesvc.votes import (
    ACCEPTED,
    ALREADY_VOTED,
    CLOSED,
    DAILY_LIMIT,
    KEY_CONFLICT,
    RATE_LIMITED,
    REPLAYED,
    VoteCaster,
)

__all__ = ["MAX_BODY", "VoteApi", "etag_matches", "is_json"]

MAX_BODY = 1024
_FIELDS = frozenset(("nominee", "phone"))
_NOMINEE = frozenset(("nominee",))
_KEY_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_KEY_MAX = 64
_UNAVAILABLE_RETRY = 1
log = logging.getLogger(__name__)
_JSON = JSON.encode()
_CACHE_CONTROL = (b"cache-control", b"public, max-age=1")


def is_json(content_type: bytes | str | None) -> bool:
    """Whether a ``Content-Type`` is JSON (parameters such as charset aside)."""
    if content_type is None:
        return False
    if isinstance(content_type, str):
        content_type = content_type.encode("latin-1")
    return content_type == _JSON or content_type.partition(b";")[0].strip().lower() == _JSON


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison of an ``If-None-Match`` list against ``etag`` (RFC 9110)."""
    if if_none_match.strip() == "*":
        return True
    mine = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == mine for tag in if_none_match.split(","))


class VoteApi:
    """The v1 endpoints, bound to one process's caster and tally board.

    ``vote``, ``tally`` and ``healthz`` are reply producers for the raw ASGI
    front (:mod:`votesvc.hotpath`); the others are Starlette endpoints.
    """

    def __init__(
        self,
        campaign: Campaign,
        caster: VoteCaster,
        board: TallyBoard,
        client_ip: ClientIP,
        secret: bytes,
        clock: Clock,
        ready: Any,
        *,
        memory: Callable[[], Awaitable[RedisMemory]],
        tokens: VoterTokens | None = None,
        stats: VoteStats | None = None,
    ) -> None:
        self.campaign = campaign
        # Until the campaign's lifelong codes are known (votesvc.meta), votes wait: 503.
        self.settled = False
        self.caster = caster
        self.board = board
        self.client_ip = client_ip
        self.hash_phone = PhoneHasher(secret)
        # None: an unverified campaign (Authorization ignored); else votes carry a token
        self.tokens = tokens
        self.stats = stats  # None: no metrics
        self.clock = clock
        self.ready_check = ready
        self.memory_report = memory  # Redis's memory; ConfigError for an evicting policy
        self.calendar = DayCalendar(campaign.timezone)
        # X-Forwarded-For counts only when some proxy is trusted: decode it only then.
        self._use_forwarded = bool(campaign.rules.trusted_proxies)
        self._tally_replies: tuple[Snapshot, Reply, Reply] | None = None
        self._unavailable = error_reply(http_error("unavailable", retry_after=_UNAVAILABLE_RETRY))
        self._healthz = json_reply(orjson.dumps({"status": "ok"}))
        self.nominees_body = orjson.dumps(
            {
                "campaign": campaign.as_json(),
                "nominees": [n.as_json() for n in campaign.nominees],
            }
        )

    def settle(self, campaign: Campaign) -> None:
        """Take votes for ``campaign``, whose nominees carry the ledger's codes."""
        self.campaign = campaign
        self.settled = True

    async def vote(self, scope: Scope, receive: Receive) -> Reply | None:
        """``POST /v1/votes``; counted in the metrics (by outcome code, and its time)."""
        stats = self.stats
        if stats is None:
            return await self._vote(scope, receive)
        started = time.perf_counter()
        reply = await self._vote(scope, receive)
        if reply is not None:
            stats.record(_outcome(reply), time.perf_counter() - started)
        return reply

    async def _vote(self, scope: Scope, receive: Receive) -> Reply | None:
        content_type = length = forwarded = key = authorization = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
            elif name == b"x-forwarded-for":
                forwarded = value if forwarded is None else forwarded + b"," + value
                if len(forwarded) > FORWARDED_MAX:  # the right-most hops count: keep the end
                    forwarded = keep_last_hops(forwarded)
            elif name == b"idempotency-key":
                key = value if key is None else b","  # sent twice: not one valid key
            elif name == b"authorization":
                authorization = value if authorization is None else b""  # sent twice: none
        if content_type != _JSON and not is_json(content_type):
            return error_reply(http_error("unsupported_media_type"))
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return error_reply(http_error("payload_too_large"))
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return None  # http.disconnect: nobody to answer
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                return error_reply(http_error("payload_too_large"))
            more = message.get("more_body", False)
        tokens = self.tokens
        try:
            nominee_id, raw_phone = _parse_vote(body, phone_required=tokens is None)
        except VoteError as invalid:
            return error_reply(invalid)
        if key is not None and not (0 < len(key) <= _KEY_MAX and _KEY_CHARS.issuperset(key)):
            return error_reply(_BAD_KEY)
        phone = None if raw_phone is None else normalize_phone(raw_phone)
        if phone is None and (raw_phone is not None or tokens is None):
            return error_reply(http_error("invalid_phone"))
        if tokens is None:
            assert phone is not None
            phone_hash, method = self.hash_phone(phone), "none"
        else:
            scheme, _, token = (authorization or b"").partition(b" ")
            if scheme.lower() != b"bearer" or not token.strip():
                return error_reply(_VERIFICATION_REQUIRED)
            try:
                voter = tokens.voter(token.strip().decode("latin-1"))
            except TokenInvalid as exc:
                log.debug("vote token refused: %s", exc)
                return error_reply(_INVALID_TOKEN)
            phone_hash, method = voter.phone_hash, voter.method
            if phone is not None and self.hash_phone(phone) != phone_hash:
                return error_reply(_PHONE_MISMATCH)
        nominee = self.campaign.nominee(nominee_id)
        if nominee is None:
            return error_reply(http_error("unknown_nominee"))
        if not self.settled:
            return self._unavailable
        client = scope.get("client")
        ip_hash, prefix_hash = self.client_ip.client(
            client[0] if client else None,
            forwarded.decode("latin-1") if forwarded is not None and self._use_forwarded else None,
        )
        try:
            status, value, vote_id = await self.caster.cast(
                nominee,
                phone_hash,
                ip_hash,
                "" if key is None else key.decode(),
                method,
                prefix_hash,
            )
        except RedisUnavailable:
            return self._unavailable
        if status in (ACCEPTED, REPLAYED):
            return json_reply(
                orjson.dumps({"vote_id": vote_id, "nominee": nominee.id, "remaining_today": value}),
                201,
            )
        if status == RATE_LIMITED:
            error = http_error("rate_limited", retry_after=max(1, math.ceil(value / 1000)))
        elif status == ALREADY_VOTED:
            error = http_error("already_voted")
        elif status == CLOSED:
            error = self._closed_error(opened=value == 1)
        elif status == KEY_CONFLICT:
            error = http_error("idempotency_conflict")
        elif status == DAILY_LIMIT:
            now = self.clock()
            day_end = self.calendar.day(now).end
            error = http_error("daily_limit", retry_after=max(1, math.ceil(day_end - now)))
        else:
            raise RuntimeError(f"cast_vote.lua returned an unknown status {status}")
        return error_reply(error)

    def _closed_error(self, *, opened: bool) -> VoteError:
        campaign = self.campaign
        if not opened:
            return http_error("voting_closed", f"Voting opens at {campaign.opens_at.isoformat()}.")
        return http_error("voting_closed", f"Voting closed at {campaign.closes_at.isoformat()}.")

    async def nominees(self, request: Request) -> Response:
        return Response(self.nominees_body, media_type=JSON)

    async def tally(self, scope: Scope, receive: Receive) -> Reply | None:
        """``GET /v1/tally``: the board's snapshot, prepared once per snapshot."""
        snapshot = self.board.snapshot
        if snapshot is None:
            return self._unavailable
        replies = self._tally_replies
        if replies is None or replies[0] is not snapshot:
            replies = self._tally_replies = _tally_replies(snapshot)
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if etag_matches(value.decode("latin-1"), snapshot.etag):
                    return replies[2]
                break
        return replies[1]

    async def healthz(self, scope: Scope, receive: Receive) -> Reply | None:
        return self._healthz

    async def readyz(self, request: Request) -> Response:
        try:
            await asyncio.wait_for(self.ready_check(), timeout=1.0)
            memory = await asyncio.wait_for(self.memory_report(), timeout=1.0)
        except (RedisUnavailable, TimeoutError) as exc:
            why = str(exc) or "Redis did not answer in time"
            reason = exc.reason if isinstance(exc, NotReady) else "redis_unreachable"
            error = http_error("unavailable", f"Not ready: {why}", retry_after=_UNAVAILABLE_RETRY)
            return _not_ready(error, reason)
        except ConfigError as exc:  # a policy that may evict: no retry will help
            return _not_ready(http_error("unavailable", f"Not ready: {exc}"), "redis_may_evict")
        return json_response({"status": "ready", "redis": memory.as_json()})


def _not_ready(error: VoteError, reason: str) -> Response:
    """``/readyz``'s 503: the usual error body, and ``reason``, a stable code for probes."""
    headers = None if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    body = {"status": "not_ready", "reason": reason, **error_json(error)}
    return json_response(body, error.status, headers)


_BAD_KEY = http_error(
    "invalid_request", "Idempotency-Key must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -."
)


_VERIFICATION_REQUIRED = http_error("verification_required")
_INVALID_TOKEN = http_error("invalid_token")
_PHONE_MISMATCH = http_error("phone_mismatch")
_BAD_VERIFIED_VOTE = http_error(
    "invalid_request",
    'Expected a JSON object {"nominee": "<id>"} (and optionally "phone") and nothing else.',
)


def _parse_vote(body: bytes, *, phone_required: bool = True) -> tuple[str, str | None]:
    """(nominee id, phone as sent) from a vote's JSON body.

    In a verified campaign (``phone_required`` False) the phone may be left out.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise http_error("invalid_json") from None
    if phone_required:
        if not isinstance(data, dict) or data.keys() != _FIELDS:
            raise http_error("invalid_request")
    elif not isinstance(data, dict) or not _NOMINEE <= data.keys() <= _FIELDS:
        raise _BAD_VERIFIED_VOTE
    nominee, phone = data["nominee"], data.get("phone")
    if not isinstance(nominee, str) or not (phone is None or isinstance(phone, str)):
        raise http_error("invalid_request") if phone_required else _BAD_VERIFIED_VOTE
    return nominee, phone


_ERROR_HEAD = b'{"error":{"code":"'


def _outcome(reply: Reply) -> str:
    """A vote reply's outcome code: "accepted", or the error code its body starts with."""
    status, _, body = reply
    if status == 201:
        return "accepted"
    if body.startswith(_ERROR_HEAD):
        end = body.find(b'"', len(_ERROR_HEAD))
        return body[len(_ERROR_HEAD) : end].decode()
    return "other"


def _tally_replies(snapshot: Snapshot) -> tuple[Snapshot, Reply, Reply]:
    """The ``200`` and ``304`` replies for one snapshot."""
    headers: Headers = [_CACHE_CONTROL, (b"etag", snapshot.etag.encode())]
    not_modified: Reply = (304, headers, b"")
    return snapshot, json_reply(snapshot.body, extra=headers), not_modified
