"""HTTP handlers of API v1: parse, call the domain, shape the reply.

The order of checks on ``POST /v1/votes`` is part of the contract: 415, 413,
``invalid_json``, ``invalid_request``, ``invalid_phone``, ``unknown_nominee``,
``voting_closed``, then what Redis decides (``rate_limited`` for the IP, then
the phone's burst, ``already_voted``, ``daily_limit``).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from votesvc.campaign import Campaign
from votesvc.clientip import ClientIP
from votesvc.days import Clock, DayCalendar
from votesvc.errors import RedisUnavailable, VoteError, http_error
from votesvc.phones import hash_phone, normalize_phone
from votesvc.responses import JSON, error_response, json_response
from votesvc.tally import TallyBoard
from votesvc.votes import ACCEPTED, ALREADY_VOTED, DAILY_LIMIT, RATE_LIMITED, VoteCaster

__all__ = ["MAX_BODY", "VoteApi", "etag_matches"]

MAX_BODY = 1024
_FIELDS = frozenset(("nominee", "phone"))
_TALLY_HEADERS = {"Cache-Control": "public, max-age=1"}
_UNAVAILABLE_RETRY = 1


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison of an ``If-None-Match`` list against ``etag`` (RFC 9110)."""
    if if_none_match.strip() == "*":
        return True
    mine = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == mine for tag in if_none_match.split(","))


class VoteApi:
    """The v1 endpoints, bound to one process's caster and tally board."""

    def __init__(
        self,
        campaign: Campaign,
        caster: VoteCaster,
        board: TallyBoard,
        client_ip: ClientIP,
        secret: bytes,
        clock: Clock,
        ready: Any,
    ) -> None:
        self.campaign = campaign
        self.caster = caster
        self.board = board
        self.client_ip = client_ip
        self.secret = secret
        self.clock = clock
        self.ready_check = ready
        self.calendar = DayCalendar(campaign.timezone)
        self.nominees_body = orjson.dumps(
            {
                "campaign": campaign.as_json(),
                "nominees": [
                    {"id": n.id, "name": n.name, "trade": n.trade, "employer": n.employer}
                    for n in campaign.nominees
                ],
            }
        )

    async def vote(self, request: Request) -> Response:
        try:
            nominee_id, raw_phone = await self._read_vote(request)
        except VoteError as invalid:
            return error_response(invalid)
        phone = normalize_phone(raw_phone)
        if phone is None:
            return error_response(http_error("invalid_phone"))
        nominee = self.campaign.nominee(nominee_id)
        if nominee is None:
            return error_response(http_error("unknown_nominee"))
        now = self.clock()
        if not self.campaign.is_open(now):
            return error_response(self._closed_error(now))
        peer = request.client.host if request.client else None
        client = self.client_ip.resolve(peer, request.headers.get("x-forwarded-for"))
        try:
            status, value, vote_id = await self.caster.cast(
                nominee, hash_phone(self.secret, phone), self.client_ip.hash(client)
            )
        except RedisUnavailable:
            return error_response(http_error("unavailable", retry_after=_UNAVAILABLE_RETRY))
        if status == ACCEPTED:
            return Response(
                orjson.dumps({"vote_id": vote_id, "nominee": nominee.id, "remaining_today": value}),
                status_code=201,
                media_type=JSON,
            )
        if status == RATE_LIMITED:
            error = http_error("rate_limited", retry_after=max(1, math.ceil(value / 1000)))
        elif status == ALREADY_VOTED:
            error = http_error("already_voted")
        elif status == DAILY_LIMIT:
            day_end = self.calendar.day(now).end
            error = http_error("daily_limit", retry_after=max(1, math.ceil(day_end - now)))
        else:
            raise RuntimeError(f"cast_vote.lua returned an unknown status {status}")
        return error_response(error)

    async def _read_vote(self, request: Request) -> tuple[str, str]:
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != JSON:
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
        if not isinstance(data, dict) or data.keys() != _FIELDS:
            raise http_error("invalid_request")
        nominee, phone = data["nominee"], data["phone"]
        if not isinstance(nominee, str) or not isinstance(phone, str):
            raise http_error("invalid_request")
        return nominee, phone

    def _closed_error(self, now: float) -> VoteError:
        campaign = self.campaign
        if now < campaign.opens_at.timestamp():
            return http_error("voting_closed", f"Voting opens at {campaign.opens_at.isoformat()}.")
        return http_error("voting_closed", f"Voting closed at {campaign.closes_at.isoformat()}.")

    async def nominees(self, request: Request) -> Response:
        return Response(self.nominees_body, media_type=JSON)

    async def tally(self, request: Request) -> Response:
        snapshot = self.board.snapshot
        if snapshot is None:
            return error_response(http_error("unavailable", retry_after=_UNAVAILABLE_RETRY))
        headers = {**_TALLY_HEADERS, "ETag": snapshot.etag}
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, snapshot.etag):
            return Response(status_code=304, headers=headers)
        return Response(snapshot.body, headers=headers, media_type=JSON)

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        try:
            await asyncio.wait_for(self.ready_check(), timeout=1.0)
        except (RedisUnavailable, TimeoutError) as exc:
            return error_response(
                http_error("unavailable", f"Not ready: {exc}", retry_after=_UNAVAILABLE_RETRY)
            )
        return json_response({"status": "ready"})
