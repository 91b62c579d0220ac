# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""The certified result, in public: ``GET /v1/results`` and the ``/results`` page.

Before certification both say the result is not announced yet; after it they
carry what the certification wrote in the ledger (votesvc.ledger.certify):
the winners, their places and votes, and when the result was certified. The
result never changes once certified, so a process reads it from the ledger
until it is certified (at most every :data:`REFRESH` seconds, whatever the
number of readers) and then never again. Both replies carry an ETag derived
from their bytes, the same from every process: ``If-None-Match`` gets a
``304``. The JSON is a raw ASGI reply producer (votesvc.hotpath), as the
tally's: an announcement brings the press and the public at once. The page
is plain HTML built here, with its stylesheet in ``votesvc/static/``: no
script, no CDN, readable on a phone.

This module reads the ledger; none of the vote path reads it (tests/test_imports.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope

from votesvc.api import etag_matches
from votesvc.campaign import Campaign
from votesvc.errors import http_error
from votesvc.hotpath import Headers, Reply, error_reply, json_reply
from votesvc.ledger.award import TIE_RULE_ZH
from votesvc.ledger.certify import uncertified_document
from votesvc.ledger.store import Store, StoreUnavailable, build_store
from votesvc.ledger.times import zh_time
from votesvc.logs import ThrottledLog
from votesvc.pages import CSP, NO_FRAMES
from votesvc.settings import Settings

__all__ = ["CACHE_CONTROL", "REFRESH", "Results"]

REFRESH = 2.0  # seconds between ledger reads per process, until the result is certified
CACHE_CONTROL = "public, max-age=5"
_PAGE_CACHE = "no-cache"  # as the other pages: revalidated (ETag) on every load
_RETRY = 5

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One reading of the result, with its replies prepared."""

    certified: bool
    reply: Reply
    not_modified: Reply
    etag: str
    page: bytes
    page_etag: str


def _etag(body: bytes) -> str:
    return f'W/"{hashlib.sha256(body).hexdigest()[:20]}"'


class Results:
    """The result as this process serves it; ``close()`` it in the lifespan's end."""

    def __init__(self, settings: Settings, campaign: Campaign) -> None:
        self.settings = settings
        self.campaign = campaign
        self._store: Store | None = None
        self._lock: asyncio.Lock | None = None
        self._snapshot: _Snapshot | None = None
        self._read_at = float("-inf")  # time.monotonic() of the last reading
        self._down_log = ThrottledLog(log, every=30.0)
        self._unavailable = error_reply(http_error("unavailable", retry_after=_RETRY))

    def forget(self) -> None:
        """Read the ledger at the next request (this process has just certified)."""
        self._read_at = float("-inf")

    async def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await store.close()

    async def current(self) -> _Snapshot | None:
        """The result now (None: the ledger has not answered yet)."""
        if self._settled():
            return self._snapshot
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one reading for every request waiting on it
            if not self._settled():
                await self._read()
        return self._snapshot

    def _settled(self) -> bool:
        """Whether the last reading stands: certified (for good), or recent."""
        snapshot = self._snapshot
        if snapshot is not None and snapshot.certified:
            return True
        return time.monotonic() - self._read_at < REFRESH

    async def _read(self) -> None:
        self._read_at = time.monotonic()  # a ledger that is down is asked again after REFRESH
        try:
            if self._store is None:
                store = build_store(self.settings)
                try:
                    await store.open()
                except StoreUnavailable:
                    await store.close()
                    raise
                self._store = store
            certification = await self._store.certification(self.campaign.id)
        except StoreUnavailable as exc:
            self._down_log.warn("results: the ledger is unavailable (%s)", exc)
            return
        if certification is None:
            document = uncertified_document(self.campaign)
        else:
            document = orjson.loads(certification.result)
        self._snapshot = self._prepare(document)

    def _prepare(self, document: dict[str, Any]) -> _Snapshot:
        body = orjson.dumps(document)
        etag = _etag(body)
        headers: Headers = [
            (b"cache-control", CACHE_CONTROL.encode()),
            (b"etag", etag.encode()),
        ]
        page = _page(self.campaign, document).encode("utf-8")
        return _Snapshot(
            certified=bool(document.get("certified")),
            reply=json_reply(body, extra=headers),
            not_modified=(304, headers, b""),
            etag=etag,
            page=page,
            page_etag=_etag(page),
        )

    async def api(self, scope: Scope, receive: Receive) -> Reply | None:
        """``GET /v1/results``."""
        snapshot = await self.current()
        if snapshot is None:
            return self._unavailable
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if etag_matches(value.decode("latin-1"), snapshot.etag):
                    return snapshot.not_modified
                break
        return snapshot.reply

    async def page(self, request: Request) -> Response:
        """``GET /results``."""
        snapshot = await self.current()
        if snapshot is None:
            return HTMLResponse(
                _unavailable_page(self.campaign),
                503,
                headers={"Retry-After": str(_RETRY), "Cache-Control": "no-store", CSP: NO_FRAMES},
            )
        headers = {"Cache-Control": _PAGE_CACHE, "ETag": snapshot.page_etag, CSP: NO_FRAMES}
        if etag_matches(request.headers.get("if-none-match", ""), snapshot.page_etag):
            return Response(status_code=304, headers=headers)
        return Response(snapshot.page, media_type="text/html; charset=utf-8", headers=headers)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _layout(campaign: Campaign, certified: bool, body: str) -> str:
    title = _esc(campaign.title)
    return (
        "<!doctype html>\n"
        '<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>评选结果 · {title}</title>"
        '<link rel="stylesheet" href="/static/results.css">'
        f'</head><body data-certified="{str(certified).lower()}">'
        f'<header class="top"><p class="campaign">{title}</p><h1>评选结果</h1></header>'
        f'<main id="main">{body}</main>'
        '<footer class="foot"><a href="/">投票页</a><a href="/dashboard">实时榜单</a></footer>'
        "</body></html>\n"
    )


def _page(campaign: Campaign, document: dict[str, Any]) -> str:
    """The page for one reading of the result."""
    tz = campaign.timezone
    if not document.get("certified"):
        closes = zh_time(int(campaign.closes_at.timestamp() * 1000), tz)
        body = (
            '<section class="pending" role="status" id="pending">'
            "<h2>结果尚未公布</h2>"
            f"<p>投票截止时间：{_esc(closes)}。</p>"
            "<p>投票截止后，组织者会核对全部选票，认证后在这里公布获奖名单。"
            "请稍后再来查看。</p></section>"
        )
        return _layout(campaign, False, body)
    certified_at = datetime.fromisoformat(str(document["certified_at"]))
    when = zh_time(int(certified_at.timestamp() * 1000), tz)
    winners: list[dict[str, Any]] = list(document.get("winners", []))
    places = [int(w["place"]) for w in winners]
    items = []
    for winner in winners:
        place = int(winner["place"])
        label = f"并列第{place}名" if places.count(place) > 1 else f"第{place}名"
        items.append(
            f'<li data-id="{_esc(winner["id"])}" data-place="{place}">'
            f'<span class="place">{label}</span>'
            f'<span class="name">{_esc(winner["name"])}</span>'
            f'<span class="trade">{_esc(winner["trade"])}</span>'
            f'<span class="votes">{int(winner["votes"]):,} 票</span></li>'
        )
    body = (
        '<p class="certified" id="certified">本结果已于 '
        f'<time datetime="{_esc(certified_at.isoformat())}">{_esc(when)}</time> 经组织者认证。</p>'
        f"<h2>“最受欢迎”奖获奖名单（共 {len(winners)} 位）</h2>"
        f'<ol class="winners" id="winners">{"".join(items)}</ol>'
        f'<p class="rule">票数为有效票（已作废的选票不计）。{_esc(TIE_RULE_ZH)}</p>'
    )
    return _layout(campaign, True, body)


def _unavailable_page(campaign: Campaign) -> str:
    body = (
        '<section class="pending" role="alert"><h2>暂时无法显示</h2>'
        "<p>结果数据暂时读不到，请过一会儿刷新本页。</p></section>"
    )
    return _layout(campaign, False, body)
