"""The application factory: routes, error handlers and the lifespan.

``create_app(settings)`` builds everything from explicit arguments; nothing is
opened at import. Connections open in the lifespan and close on shutdown,
after the vote batches in hand have been answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from votesvc.admin.console import Console
from votesvc.api import VoteApi
from votesvc.campaign import Campaign, load_campaign
from votesvc.clientip import ClientIP
from votesvc.connection import connect
from votesvc.cors import PartnerCORS
from votesvc.days import Clock, system_clock
from votesvc.errors import ConfigError, NotReady, RedisUnavailable, http_error
from votesvc.gctune import tune_for_serving
from votesvc.hotpath import RawRoute, VoteApp
from votesvc.keys import Keys
from votesvc.ledger.backoff import Backoff, wait_or_stop
from votesvc.ledger.gauges import LedgerWatch
from votesvc.ledger.runner import FlusherTask
from votesvc.ledger.setup import settle_campaign
from votesvc.ledger.store import StoreUnavailable, build_store
from votesvc.logs import ThrottledLog
from votesvc.media import prepare_photos
from votesvc.meta import campaign_from_mirror, data_intact
from votesvc.metrics import Metrics, VoteStats
from votesvc.openapi import openapi_route
from votesvc.pages import page_routes
from votesvc.redismemory import MemoryGuard
from votesvc.responses import error_response
from votesvc.results import Results
from votesvc.scripts import register_scripts
from votesvc.settings import Settings
from votesvc.shutdown import on_exit_signal
from votesvc.sse import TallyStream
from votesvc.tally import TallyBoard
from votesvc.verification import build_verification
from votesvc.verify_api import VerificationApi
from votesvc.votes import VoteCaster

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger(__name__)

_PUSH_EVERY = 1.0  # seconds between pushes of the vote counts into the metrics
_SAMPLE_EVERY = 5.0  # seconds between samples of readiness, Redis memory, the ledger backlog


def create_app(
    settings: Settings,
    campaign: Campaign | None = None,
    clock: Clock = system_clock,
    *,
    tune_gc: bool = False,
) -> Starlette:
    """The ASGI app for ``settings`` (``campaign`` defaults to the settings' file).

    ``tune_gc``: a serving process freezes its start-up objects and collects
    rarely (see :mod:`votesvc.gctune`); tests leave the collector alone.
    """
    if campaign is None:
        campaign = load_campaign(settings.campaign_path)
    photos = prepare_photos(campaign, settings.data_dir)  # `serve` made them: found, not made
    campaign = campaign.with_photo_urls(photos.urls)
    client = connect(settings)
    keys = Keys(campaign.id, settings.shards)
    metrics = Metrics() if settings.metrics_port is not None else None
    stats = VoteStats() if metrics is not None else None
    caster = VoteCaster(client, campaign, keys, clock, settings, metrics=metrics, stats=stats)
    board = TallyBoard(client, campaign, keys, clock, settings.tally_refresh)
    streams = TallyStream(board, max_streams=settings.sse_max, heartbeat=settings.sse_heartbeat)

    async def ready() -> None:
        """Raise NotReady (with its reason) unless votes can be taken now."""
        try:
            await client.ping()
            await register_scripts(client)
            await caster.learn_clocks()
            intact = await data_intact(client, keys)
        except (RedisError, OSError) as exc:
            raise NotReady("redis_unreachable", str(exc)) from exc
        if not intact:
            raise NotReady(
                "redis_data_lost",
                "Redis has lost the campaign's data: votes wait for `votesvc restore`",
            )
        if not api.settled:
            raise NotReady("campaign_not_set_up", "the campaign's codes are not known yet")

    async def set_up_campaign() -> bool:
        """Learn the campaign's lifelong codes (a flusher's process also fixes them)."""
        try:
            if settings.flush_in_serve:
                store = build_store(settings)
                try:
                    await store.open()
                    settled: Campaign | None = await settle_campaign(
                        store, client, keys, campaign, settings
                    )
                finally:
                    await store.close()
            else:
                settled = await campaign_from_mirror(client, keys, campaign, settings)
        except (StoreUnavailable, RedisError, OSError) as exc:
            setup_log.warn("campaign %s not set up yet (%s); votes wait", campaign.id, exc)
            return False
        except ConfigError as exc:
            setup_log.error("campaign %s refused: %s", campaign.id, exc)
            return False
        if settled is None:
            setup_log.warn(
                "campaign %s is not set up in Redis yet: votes wait for a process that opens "
                "the ledger (serve with its flusher, votesvc flush, votesvc restore)",
                campaign.id,
            )
            return False
        api.settle(settled)
        return True

    async def watch(
        metrics: Metrics, stats: VoteStats, ledger_watch: LedgerWatch, stop: asyncio.Event
    ) -> None:
        """Push the vote counts every second; sample the gauges every few seconds."""
        next_sample = 0.0
        while True:
            stats.push(metrics)
            snapshot = board.snapshot
            metrics.tally_age.set(0 if snapshot is None else max(0.0, clock() - snapshot.as_of))
            metrics.sse_streams.set(streams.open_streams)
            if stop.is_set():
                return
            if time.monotonic() >= next_sample:
                next_sample = time.monotonic() + _SAMPLE_EVERY
                await sample(metrics, ledger_watch)
            await wait_or_stop(stop, _PUSH_EVERY)

    async def sample(metrics: Metrics, ledger_watch: LedgerWatch) -> None:
        try:
            await asyncio.wait_for(ready(), timeout=1.0)
            metrics.ready.set(1)
        except (NotReady, TimeoutError):
            metrics.ready.set(0)
        try:
            memory = await asyncio.wait_for(memory_guard.report(), timeout=1.0)
            metrics.redis_used_memory.set(memory.used_memory)
            metrics.redis_maxmemory.set(memory.maxmemory)
            await asyncio.wait_for(ledger_watch.sample(int(clock() * 1000)), timeout=2.0)
        except (RedisUnavailable, ConfigError, RedisError, OSError, TimeoutError) as exc:
            setup_log.warn("metrics: cannot sample Redis (%s)", exc)

    async def keep_setting_up(stop: asyncio.Event) -> None:
        backoff = Backoff(1.0)
        while not stop.is_set() and not await set_up_campaign():
            await backoff.wait(stop)

    verifiers = build_verification(campaign, settings, client, keys, clock)
    client_ip = ClientIP(campaign.rules.trusted_proxies, settings.secret)
    memory_guard = MemoryGuard(client, allow_eviction=settings.allow_eviction)
    api = VoteApi(
        campaign,
        caster,
        board,
        client_ip,
        settings.secret,
        clock,
        ready,
        memory=memory_guard.report,
        tokens=verifiers.tokens,
        stats=stats,
    )

    setup_log = ThrottledLog(log, every=10.0)
    # The organisers' console: its ledger store opens at its first request.
    results = Results(settings, campaign)  # the certified result: its ledger opens when asked
    console = Console(
        settings,
        campaign,
        client,
        keys,
        board,
        client_ip,
        ready,
        clock,
        metrics=metrics,
        on_certified=results.forget,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stopping = asyncio.Event()
        setup = None
        if not await set_up_campaign():  # votes wait (503) until it is done
            setup = asyncio.create_task(keep_setting_up(stopping), name="campaign-setup")
        try:
            await ready()
        except NotReady as exc:
            log.warning("not ready at start-up (%s: %s); /readyz says so", exc.reason, exc)
        refresher = asyncio.create_task(board.run(), name="tally-refresh")
        ledger = FlusherTask(settings, keys, clock) if settings.flush_in_serve else None
        if ledger is not None:
            ledger.start()
        app.state.flusher = ledger
        log.info(
            "campaign %s: %d nominees, tally every %.2fs",
            campaign.id,
            len(campaign.nominees),
            settings.tally_refresh,
        )
        fanout = asyncio.create_task(streams.run(), name="tally-stream")
        watcher = None
        if metrics is not None and stats is not None:
            flusher = ledger.flusher if ledger is not None else None
            ledger_watch = LedgerWatch(metrics, client, keys, flusher)
            watcher = asyncio.create_task(
                watch(metrics, stats, ledger_watch, stopping), name="metrics"
            )
        if tune_gc:
            tune_for_serving()
        try:
            with on_exit_signal(streams.close):  # open streams must not hold up a shutdown
                yield
        finally:
            stopping.set()
            if setup is not None:
                await setup
            streams.close()
            fanout.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fanout
            await caster.drain()
            if watcher is not None:
                await watcher  # pushes the last counts
            if ledger is not None:
                await ledger.stop()  # after the drain: the last votes' batch is in hand
            board.stop()
            await refresher
            if verifiers.sender is not None:
                await verifiers.sender.aclose()
            await console.close()
            await results.close()
            await client.aclose()

    routes = [
        RawRoute("/v1/votes", api.vote, methods=["POST"]),
        Route("/v1/nominees", api.nominees, methods=["GET"]),
        RawRoute("/v1/tally", api.tally, methods=["GET"]),
        Route("/v1/tally/stream", streams, methods=["GET"]),
        RawRoute("/v1/results", results.api, methods=["GET"]),
        Route("/results", results.page, methods=["GET"], name="results_page"),
        RawRoute("/healthz", api.healthz, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        openapi_route(campaign.verification),
        *page_routes(settings.embed_origins),
        photos.route(),
        Route("/admin", console.at_root, methods=["GET"]),
        Mount("/admin", app=console, name="console"),
    ]
    if verifiers.codes is not None and verifiers.tokens is not None:  # the SMS flow
        flow = VerificationApi(
            campaign,
            verifiers.codes,
            verifiers.pow_gate,
            verifiers.tokens,
            client_ip,
            settings.secret,
            metrics=metrics,
        )
        routes += [
            Route("/v1/pow", flow.pow, methods=["GET"]),
            Route("/v1/otp", flow.otp, methods=["POST"]),
            Route("/v1/otp/verify", flow.verify, methods=["POST"]),
        ]
    # Only when configured: a media partner's page on another origin posting votes.
    middleware = (
        [
            Middleware(
                PartnerCORS,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Content-Type", "If-None-Match", "Idempotency-Key", "Authorization"],
                expose_headers=["ETag", "Retry-After"],
                max_age=3600,
                private=("/admin",),  # the console answers no other origin
            )
        ]
        if settings.cors_origins
        else []
    )
    app = VoteApp(  # serves the RawRoutes ahead of Starlette's middleware
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_exception, Exception: _internal_error},
    )
    app.state.api = api
    app.state.metrics = metrics
    app.state.keys = keys
    app.state.redis = client
    app.state.streams = streams
    app.state.console = console
    return app


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory``: settings from ``VOTESVC_*`` variables."""
    return create_app(Settings.from_env(), tune_gc=True)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = http_error("not_found")
    elif exc.status_code == 405:
        error = http_error("method_not_allowed")
    else:
        error = http_error("invalid_request", str(exc.detail))
        error.status = exc.status_code
    response = error_response(error)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _internal_error(request: Request, exc: Exception) -> Response:
    # ServerErrorMiddleware logs the traceback for the operator; the client gets this.
    return error_response(http_error("internal_error"))
