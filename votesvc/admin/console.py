# ruff: noqa: RUF001  (the pages speak Chinese: full-width punctuation)
"""The console's HTTP side: the gate, sign-in and out, and each page's handler.

:class:`Console` is an ASGI app mounted at ``/admin``. Before any route, the
gate: a client outside ``VOTESVC_ADMIN_ALLOW``, or a ledger with no account
that may sign in, gets the API's own ``404`` (the console does not exist for
them). Every reply carries ``frame-ancestors 'none'`` (and no CORS header:
``PartnerCORS`` leaves ``/admin`` alone) and is not cached.

A page needs a live session (else: back to sign-in); a form that changes
something needs its CSRF token first (else ``403 csrf_failed``), then the
role (a viewer's void, certify or export is ``403``). The ledger's store is
opened at the first request and kept; it has a flusher of its own, so a void
or the suspicious-activity page can take in the votes cast a moment ago. Once
the result is certified, a void answers ``409 result_certified``.

Every page's handler is here, a few lines of glue each (read the form, call
the ledger's module, render the page module's HTML), next to the gate and the
session check they all go through: that is why the module is long.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from redis.exceptions import RedisError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from votesvc.admin.accounts import Passwords
from votesvc.admin.audit_page import SHOWN, audit_page, parse_filter
from votesvc.admin.award_page import award_page, read_award
from votesvc.admin.certify_page import certified_page, certify_form_page
from votesvc.admin.csrf import FIELD, PRE_COOKIE, Csrf
from votesvc.admin.export_page import (
    export_done_page,
    export_form_page,
    file_name,
    label_error,
)
from votesvc.admin.forms import FormTooLarge, read_form
from votesvc.admin.gate import Gate
from votesvc.admin.html import Viewer
from votesvc.admin.lockout import Lockout
from votesvc.admin.overview import overview_page, read_overview
from votesvc.admin.replies import Replies, html_reply
from votesvc.admin.sessions import COOKIE, Sessions, SignedIn, cookie_header
from votesvc.admin.signin import SignIns
from votesvc.admin.signin_page import locked_message, signin_page
from votesvc.admin.suspects_page import suspects_page
from votesvc.admin.void_choice import FormError, chosen_from_confirm, chosen_from_form
from votesvc.admin.void_page import done_page, preview_page, void_form_page
from votesvc.campaign import Campaign
from votesvc.clientip import ClientIP
from votesvc.connection import RedisClient
from votesvc.days import Clock
from votesvc.errors import http_error
from votesvc.keys import Keys
from votesvc.ledger.award import Caveat
from votesvc.ledger.certify import CertifyRefused, certify
from votesvc.ledger.export import ExportFailed, Refs, digest_line, export_digest, export_ledger
from votesvc.ledger.flusher import Flusher
from votesvc.ledger.runner import flusher_client
from votesvc.ledger.store import (
    AuditEntry,
    ResultCertified,
    Store,
    StoreUnavailable,
    build_store,
)
from votesvc.ledger.store.admin import AdminTables
from votesvc.ledger.suspects import find_suspects
from votesvc.ledger.void import (
    LiveCountersNotUpdated,
    SelectionChanged,
    confirm_void,
    preview_void,
)
from votesvc.metrics import Metrics
from votesvc.responses import error_response
from votesvc.settings import Settings
from votesvc.tally import TallyBoard

__all__ = ["Console"]

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_RECENT_EXPORTS = 10  # shown on the export page
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(slots=True)
class _Ledger:
    """What the console keeps open: the store, its tables, a flusher and its client."""

    store: Store
    tables: AdminTables
    sessions: Sessions
    signins: SignIns
    client: RedisClient
    flusher: Flusher


@dataclass(frozen=True, slots=True)
class _Asked:
    """A signed-in request: who, the form (for a POST) and the time."""

    viewer: Viewer
    signed_in: SignedIn
    form: dict[str, str]
    now: float

    @property
    def now_ms(self) -> int:
        return int(self.now * 1000)


Handler = Callable[[Request, _Asked], Awaitable[Response]]


class Console:
    """The ``/admin`` app. ``close()`` it in the lifespan's end."""

    def __init__(
        self,
        settings: Settings,
        campaign: Campaign,
        client: RedisClient,
        keys: Keys,
        board: TallyBoard,
        client_ip: ClientIP,
        ready: Callable[[], Awaitable[None]],
        clock: Clock,
        metrics: Metrics | None = None,
        on_certified: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_certified = on_certified  # this process's /results reads the ledger again
        self.campaign = campaign
        self.client = client
        self.keys = keys
        self.board = board
        self.ready = ready
        self.clock = clock
        self.metrics = metrics
        self.gate = Gate(settings.admin_allow, client_ip)
        self.csrf = Csrf(settings.secret)
        self.passwords = Passwords()
        self.replies = Replies(campaign)
        self._ledger: _Ledger | None = None
        self._opening: asyncio.Lock | None = None
        self._router = Router(
            routes=[
                Route("/", self.home, methods=["GET"]),
                Route("/login", self.signin_form, methods=["GET"]),
                Route("/login", self.signin, methods=["POST"]),
                Route("/logout", self._page(self.signout), methods=["POST"]),
                Route("/overview", self._page(self.overview), methods=["GET"]),
                Route("/award", self._page(self.award), methods=["GET"]),
                Route("/audit", self._page(self.audit), methods=["GET"]),
                Route("/suspects", self._page(self.suspects), methods=["GET"]),
                Route("/void", self._page(self.void_form, operator=True), methods=["GET"]),
                Route(
                    "/void/preview",
                    self._page(self.void_preview, operator=True),
                    methods=["POST"],
                ),
                Route(
                    "/void/confirm",
                    self._page(self.void_confirm, operator=True),
                    methods=["POST"],
                ),
                Route("/certify", self._page(self.certify_form, operator=True), methods=["GET"]),
                Route("/certify", self._page(self.certify, operator=True), methods=["POST"]),
                Route("/export", self._page(self.export_form, operator=True), methods=["GET"]),
                Route("/export", self._page(self.export, operator=True), methods=["POST"]),
                Route("/export/file", self._page(self.export_file, operator=True), methods=["GET"]),
                Route(
                    "/export/sha256",
                    self._page(self.export_sha256, operator=True),
                    methods=["GET"],
                ),
                Mount("/static", app=StaticFiles(packages=[("votesvc.admin", "static")])),
            ]
        )

    # -- the gate, the ledger ------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        refused = await self._gate(Request(scope, receive))
        if refused is not None:
            await refused(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self._router(scope, receive, secured)

    async def at_root(self, request: Request) -> Response:
        """``/admin`` itself (the mount answers ``/admin/...``): the gate, then the overview."""
        refused = await self._gate(request)
        return refused or RedirectResponse("/admin/overview", 303)

    async def _gate(self, request: Request) -> Response | None:
        """The reply for a request that must not see the console (None: it may)."""
        if not self.gate.admits(request):
            return error_response(http_error("not_found"))
        try:
            ledger = await self._open()
            exists = await ledger.tables.any_active()
        except StoreUnavailable as exc:
            log.warning("console: the ledger is unavailable (%s)", exc)
            return self.replies.unavailable()
        if not exists:
            return error_response(http_error("not_found"))
        return None

    async def _open(self) -> _Ledger:
        if self._ledger is not None:
            return self._ledger
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._ledger is None:
                store = build_store(self.settings)
                try:
                    await store.open()
                except StoreUnavailable:
                    await store.close()
                    raise
                tables = AdminTables(store)
                client = flusher_client(self.settings)
                flusher = Flusher(client, store, self.keys, self.settings, clock=self.clock)
                sessions = Sessions(tables)
                signins = SignIns(tables, sessions, Lockout(tables), self.passwords, self._audit)
                self._ledger = _Ledger(store, tables, sessions, signins, client, flusher)
            return self._ledger

    async def close(self) -> None:
        ledger, self._ledger = self._ledger, None
        if ledger is None:
            return
        try:
            await ledger.flusher.retire()
        finally:
            await ledger.store.close()
            await ledger.client.aclose()

    # -- the ledger's side -------------------------------------------------------------

    async def _audit(
        self, actor: str, action: str, detail: Mapping[str, object], now: float
    ) -> None:
        entry = AuditEntry(
            at=int(now * 1000),
            actor=actor,
            action=action,
            detail=json.dumps(detail, sort_keys=True, ensure_ascii=False),
            reason="",
        )
        await self._require().store.record_audit(self.campaign.id, entry)

    def _require(self) -> _Ledger:
        assert self._ledger is not None, "the gate opens the ledger first"
        return self._ledger

    def _count_signin(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.admin_signins.labels(outcome).inc()

    # -- sessions --------------------------------------------------------------------------

    def _page(
        self, handler: Handler, *, operator: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind a session, the CSRF token of a POST, and the role."""

        async def endpoint(request: Request) -> Response:
            now = self.clock()
            ledger = self._require()
            token = request.cookies.get(COOKIE)
            try:
                signed_in = await ledger.sessions.find(token, int(now * 1000))
            except StoreUnavailable:
                return self.replies.unavailable()
            if signed_in is None:
                target = "/admin/login?expired=1" if token else "/admin/login"
                response = RedirectResponse(target, 303)
                if token:
                    response.headers.append(
                        "set-cookie",
                        cookie_header(COOKIE, "", secure=self._https(request), clear=True),
                    )
                return response
            account = signed_in.account
            viewer = Viewer(account.name, account.role, self.csrf.for_session(signed_in.token_hash))
            form: dict[str, str] = {}
            if request.method == "POST":
                try:
                    form = await read_form(request)
                except FormTooLarge:
                    return self.replies.too_large(viewer)
                if not self.csrf.valid(viewer.csrf, form.get(FIELD)):
                    log.warning("console: a form of %s came without its CSRF token", account.name)
                    return self.replies.csrf_failed(viewer)
            if operator and not viewer.operator:
                return self.replies.forbidden(viewer)
            try:
                return await handler(request, _Asked(viewer, signed_in, form, now))
            except StoreUnavailable as exc:
                log.warning("console: the ledger is unavailable (%s)", exc)
                return self.replies.unavailable(viewer)
            except (RedisError, OSError) as exc:
                log.warning("console: Redis is unavailable (%s)", exc)
                return self.replies.unavailable(viewer, redis=True)

        return endpoint

    def _https(self, request: Request) -> bool:
        return self.gate.https(request)

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/admin/overview", 303)

    def _signin_reply(
        self,
        request: Request,
        status: int,
        *,
        name: str = "",
        code: str | None = None,
        message: str | None = None,
    ) -> HTMLResponse:
        """The sign-in page with a fresh CSRF cookie of its own."""
        pre = self.csrf.new_pre_session()
        page = signin_page(
            self.campaign, self.csrf.for_pre_session(pre), name=name, code=code, message=message
        )
        response = html_reply(page, status)
        response.headers.append(
            "set-cookie", cookie_header(PRE_COOKIE, pre, secure=self._https(request))
        )
        return response

    async def signin_form(self, request: Request) -> Response:
        query = request.query_params
        code = "expired" if "expired" in query else ("signed_out" if "bye" in query else None)
        return self._signin_reply(request, 200, code=code)

    async def signin(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormTooLarge:
            form = {}
        pre = request.cookies.get(PRE_COOKIE)
        if not pre or not self.csrf.valid(self.csrf.for_pre_session(pre), form.get(FIELD)):
            self._count_signin("csrf_failed")
            return self._signin_reply(request, 403, code="csrf_failed")
        name = form.get("name", "").strip()
        try:
            attempt = await self._require().signins.attempt(
                name,
                form.get("password", ""),
                self.gate.prefix(request),
                self.clock(),
                replacing=request.cookies.get(COOKIE),
            )
        except StoreUnavailable as exc:
            log.warning("console: the ledger is unavailable (%s)", exc)
            return self.replies.unavailable()
        self._count_signin(attempt.outcome)
        if attempt.outcome == "locked" and attempt.until is not None:
            message = locked_message(attempt.until, self.campaign)
            return self._signin_reply(request, 429, name=name, code="locked", message=message)
        if attempt.outcome == "unknown_account":
            return self._signin_reply(request, 401, code="wrong")  # the name is not echoed
        if attempt.outcome == "disabled":
            return self._signin_reply(request, 403, name=name, code="disabled")
        if attempt.token is None:
            return self._signin_reply(request, 401, name=name, code="wrong")
        secure = self._https(request)
        response = RedirectResponse("/admin/overview", 303)
        response.headers.append("set-cookie", cookie_header(COOKIE, attempt.token, secure=secure))
        response.headers.append(
            "set-cookie", cookie_header(PRE_COOKIE, "", secure=secure, clear=True)
        )
        return response

    async def signout(self, request: Request, asked: _Asked) -> Response:
        ledger = self._require()
        await ledger.sessions.end(request.cookies.get(COOKIE))
        await self._audit(asked.viewer.name, "signout", {"via": "console"}, asked.now)
        response = RedirectResponse("/admin/login?bye=1", 303)
        response.headers.append(
            "set-cookie", cookie_header(COOKIE, "", secure=self._https(request), clear=True)
        )
        return response

    # -- pages -----------------------------------------------------------------------------

    async def overview(self, request: Request, asked: _Asked) -> Response:
        ledger = self._require()
        overview = await read_overview(
            self.campaign, self.client, self.keys, self.board, ledger.store, self.ready, asked.now
        )
        return html_reply(overview_page(self.campaign, overview, asked.viewer))

    async def award(self, request: Request, asked: _Asked) -> Response:
        ledger = self._require()
        result = await read_award(self.campaign, self.client, self.keys, ledger.store, asked.now)
        return html_reply(award_page(self.campaign, result, asked.viewer))

    async def audit(self, request: Request, asked: _Asked) -> Response:
        chosen, error = parse_filter(request.query_params, self.campaign)
        entries = await self._require().store.audit_log(
            self.campaign.id,
            action=chosen.action,
            actor=chosen.actor,
            since=chosen.since,
            until=chosen.until,
            last=SHOWN,
        )
        return html_reply(audit_page(self.campaign, entries, chosen, asked.viewer, error=error))

    async def _certified_at(self) -> int | None:
        """When the result was certified (its votes frozen), or None."""
        found = await self._require().store.certification(self.campaign.id)
        return None if found is None else found.certified_at

    async def suspects(self, request: Request, asked: _Asked) -> Response:
        ledger = self._require()
        await ledger.flusher.catch_up()  # a burst of a moment ago is on the page
        found = await find_suspects(ledger.store, self.campaign)
        page = suspects_page(
            self.campaign,
            found,
            Refs(self.settings.secret, self.campaign.id),  # as the export's prefix_ref
            asked.viewer,
            now_ms=asked.now_ms,
            certified_at=await self._certified_at(),
        )
        return html_reply(page)

    async def void_form(self, request: Request, asked: _Asked) -> Response:
        page = void_form_page(self.campaign, asked.viewer, certified_at=await self._certified_at())
        return html_reply(page)

    async def void_preview(self, request: Request, asked: _Asked) -> Response:
        ledger = self._require()
        certified_at = await self._certified_at()
        if certified_at is not None:
            return self.replies.certified(asked.viewer, certified_at)
        try:
            chosen = chosen_from_form(asked.form, self.campaign, self.settings.secret)
        except FormError as exc:
            page = void_form_page(self.campaign, asked.viewer, form=asked.form, error=str(exc))
            return html_reply(page, 400)
        preview = await preview_void(ledger.store, ledger.flusher, self.campaign, chosen.selection)
        return html_reply(preview_page(self.campaign, chosen, preview, asked.viewer))

    async def void_confirm(self, request: Request, asked: _Asked) -> Response:
        ledger = self._require()
        viewer = asked.viewer
        certified_at = await self._certified_at()
        if certified_at is not None:
            return self.replies.certified(viewer, certified_at)
        try:
            chosen = chosen_from_confirm(asked.form, self.campaign)
        except FormError as exc:
            return html_reply(void_form_page(self.campaign, viewer, error=str(exc)), 400)
        reason = asked.form.get("reason", "").strip()[:500]
        if not reason:
            preview = await preview_void(
                ledger.store, ledger.flusher, self.campaign, chosen.selection
            )
            page = preview_page(
                self.campaign, chosen, preview, viewer, error="请填写作废原因，它会记入审计日志。"
            )
            return html_reply(page, 400)
        live_updated = True
        try:
            voided = await confirm_void(
                self.client,
                self.keys,
                ledger.store,
                ledger.flusher,
                self.campaign,
                chosen.selection,
                asked.form.get("frozen", ""),
                reason=reason,
                actor=viewer.name,
                clock=self.clock,
                via="console",
                context={"signal": chosen.signal} if chosen.signal else None,
            )
        except ResultCertified:  # certified between the check and the void
            return self.replies.certified(viewer, await self._certified_at())
        except SelectionChanged as exc:
            page = preview_page(
                self.campaign, chosen, exc.preview, viewer, changed=True, reason=reason
            )
            return html_reply(page, 409)
        except LiveCountersNotUpdated as exc:
            log.error("console: %s", exc)
            voided, live_updated = exc.voided, False
        if self.metrics is not None:
            self.metrics.votes_voided.inc(len(voided))
        log.info("console: %s voided %d votes", viewer.name, len(voided))
        page = done_page(self.campaign, chosen, voided, viewer, live_updated=live_updated)
        return html_reply(page)

    async def certify_form(self, request: Request, asked: _Asked) -> Response:
        ledger = self._require()
        existing = await ledger.store.certification(self.campaign.id)
        if existing is not None:
            return html_reply(certified_page(self.campaign, existing, asked.viewer))
        return html_reply(await self._certify_form(asked))

    async def _certify_form(
        self,
        asked: _Asked,
        *,
        error: str | None = None,
        code: str | None = None,
        refused: list[Caveat] | None = None,
    ) -> str:
        """The form, or why not now (``refused``: what a certify just said, if the
        award does not say it itself, e.g. votes being voided meanwhile)."""
        award = await read_award(
            self.campaign, self.client, self.keys, self._require().store, asked.now
        )
        return certify_form_page(
            self.campaign,
            asked.viewer,
            caveats=award.caveats or refused or [],
            placings=award.placings,
            seats=award.top,
            now_ms=asked.now_ms,
            error=error,
            status_code=code,
        )

    async def certify(self, request: Request, asked: _Asked) -> Response:
        ledger = self._require()
        viewer = asked.viewer
        if asked.form.get("confirm") != "yes":
            page = await self._certify_form(
                asked, error="请先勾选确认框，再认证。", code="invalid_form"
            )
            return html_reply(page, 400)
        try:
            done = await certify(
                self.client,
                self.keys,
                ledger.store,
                self.campaign,
                self.settings.secret,
                actor=viewer.name,
                clock=self.clock,
                via="console",
            )
        except CertifyRefused as exc:
            if exc.existing is not None:
                page = certified_page(self.campaign, exc.existing, viewer)
                return html_reply(page, 409)
            return html_reply(await self._certify_form(asked, refused=exc.caveats), 409)
        if self.on_certified is not None:
            self.on_certified()
        log.info(
            "console: %s certified the result (export sha256 %s)",
            viewer.name,
            done.certification.export_sha256,
        )
        return html_reply(certified_page(self.campaign, done.certification, viewer, just_now=True))

    async def export_form(self, request: Request, asked: _Asked) -> Response:
        return html_reply(await self._export_form(asked))

    async def _export_form(
        self, asked: _Asked, *, label: str | None = None, error: str | None = None
    ) -> str:
        store = self._require().store
        exports = await store.audit_log(self.campaign.id, action="export", last=_RECENT_EXPORTS)
        certification = await store.certification(self.campaign.id)
        return export_form_page(
            self.campaign, asked.viewer, exports, certification, label=label, error=error
        )

    async def export(self, request: Request, asked: _Asked) -> Response:
        store = self._require().store
        label = asked.form.get("label", "").strip()
        error = label_error(label)
        if error is not None:
            return html_reply(await self._export_form(asked, label=label, error=error), 400)
        done = await export_digest(store, self.campaign, Refs(self.settings.secret, label))
        detail = {
            "file": file_name(self.campaign, label),
            "rows": done.rows,
            "void": done.void,
            "label": label,
            "internal": False,
            "sha256": done.sha256,
            "via": "console",
        }
        await self._audit(asked.viewer.name, "export", detail, asked.now)
        certification = await store.certification(self.campaign.id)
        return html_reply(export_done_page(self.campaign, asked.viewer, done, label, certification))

    def _asked_export(self, request: Request) -> tuple[str, str] | None:
        """(label, SHA-256) a download link names, or None if it is malformed."""
        label = request.query_params.get("label", "")
        digest = request.query_params.get("sha256", "")
        if label_error(label) is not None or not _SHA256.fullmatch(digest):
            return None
        return label, digest

    async def export_file(self, request: Request, asked: _Asked) -> Response:
        asked_for = self._asked_export(request)
        if asked_for is None:
            return await self.export_form(request, asked)
        label, digest = asked_for
        name = file_name(self.campaign, label)
        # Beside the data (a big file does not fill /tmp), or where the system says.
        where = self.settings.data_dir if self.settings.data_dir.is_dir() else None
        folder = Path(tempfile.mkdtemp(prefix=".export-", dir=where))
        try:
            done = await export_ledger(
                self._require().store,
                self.campaign,
                folder / name,
                refs=Refs(self.settings.secret, label),
            )
        except (ExportFailed, StoreUnavailable):
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if done.sha256 != digest:
            shutil.rmtree(folder, ignore_errors=True)
            return self.replies.export_changed(asked.viewer)
        return FileResponse(
            folder / name,
            media_type="text/csv; charset=utf-8",
            filename=name,
            headers={"Cache-Control": "no-store"},
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )

    async def export_sha256(self, request: Request, asked: _Asked) -> Response:
        asked_for = self._asked_export(request)
        if asked_for is None:
            return await self.export_form(request, asked)
        label, digest = asked_for
        name = file_name(self.campaign, label)
        return Response(
            digest_line(digest, name),
            media_type="text/plain; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}.sha256"',
                "Cache-Control": "no-store",
            },
        )
