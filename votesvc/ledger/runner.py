"""Running the ledger flusher: a task inside ``serve``, or its own process.

Both build the flusher the same way from settings; it gets its own Redis
client with a longer timeout than the vote path's (a batch read is bigger
than a vote) and its own store. On a Redis Cluster the client learns the
cluster (:func:`learn_cluster`) before the tasks that share it start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from redis.asyncio.cluster import RedisCluster

from votesvc.campaign import Campaign
from votesvc.connection import RedisClient, connect
from votesvc.days import Clock, system_clock
from votesvc.keys import Keys
from votesvc.ledger.backoff import REDIS_DOWN, Backoff, wait_or_stop
from votesvc.ledger.flusher import Flusher
from votesvc.ledger.gauges import LedgerWatch
from votesvc.ledger.setup import settle_until
from votesvc.ledger.store import build_store
from votesvc.logs import ThrottledLog
from votesvc.metrics import Metrics, serve_metrics
from votesvc.settings import Settings

__all__ = [
    "FlusherTask",
    "build_flusher",
    "flush_until",
    "flusher_client",
    "learn_cluster",
    "run_flusher",
]

log = logging.getLogger(__name__)

FLUSHER_REDIS_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0  # seconds a stop waits for the batch in hand
WATCH_EVERY = 2.0  # seconds between metrics samples of `votesvc flush`
_UNSAMPLED: tuple[type[Exception], ...] = (*REDIS_DOWN, TimeoutError)  # a metrics sample skipped
LEARN_BACKOFF_MAX = 1.0  # seconds: the longest wait between tries to reach a cluster at start


def flusher_client(settings: Settings) -> RedisClient:
    """A Redis client for ledger work (bulk reads: a longer timeout)."""
    timeout = max(settings.redis_timeout, FLUSHER_REDIS_TIMEOUT)
    return connect(replace(settings, redis_timeout=timeout))


async def learn_cluster(client: RedisClient, stop: asyncio.Event) -> bool:
    """Let a cluster client learn the cluster before several tasks share it.

    redis-py's async cluster client learns the cluster's slots on its first
    command. Tasks that start together on a fresh client (the set-up, the
    flusher and its heartbeat, the metrics) send their first commands before
    it knows where a key lives; the redirects make it learn the cluster again
    under the calls still on the wire, which then fail ("Connection lost",
    "No way to dispatch this command to Redis Cluster"): a new ``votesvc
    flush`` of a fleet failed its first cycle. So one call first, retried while
    the cluster cannot be reached. A single Redis needs none. False: stopped first.
    """
    if not isinstance(client, RedisCluster):
        return True
    backoff = Backoff(LEARN_BACKOFF_MAX)
    down = ThrottledLog(log, every=10.0)
    while not stop.is_set():
        try:
            await client.initialize()
            return True
        except REDIS_DOWN as exc:
            down.warn("cannot reach the Redis Cluster (%s); retrying", exc)
            await backoff.wait(stop)
    return False


def build_flusher(
    settings: Settings, client: RedisClient, keys: Keys, clock: Clock = system_clock
) -> Flusher:
    """A flusher for ``settings`` (its store is opened by ``run``)."""
    return Flusher(client, build_store(settings), keys, settings, clock=clock)


class FlusherTask:
    """The flusher as a background task of one ``serve`` worker."""

    def __init__(self, settings: Settings, keys: Keys, clock: Clock = system_clock) -> None:
        self._client = flusher_client(settings)
        self.flusher = build_flusher(settings, self._client, keys, clock)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ledger-flusher")

    async def _run(self) -> None:
        if await learn_cluster(self._client, self._stop):  # the heartbeat shares the client
            await self.flusher.run(self._stop)

    async def stop(self, wait: float = STOP_TIMEOUT) -> None:
        """Let the batch in hand finish (within ``wait`` seconds), then close."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, wait)
            except TimeoutError:
                log.warning("ledger flusher did not stop in %.0fs; its batch stays pending", wait)
            except Exception:
                log.exception("ledger flusher failed")
        await self.flusher.retire()
        await self.flusher.store.close()
        await self._client.aclose()


async def run_flusher(settings: Settings, keys: Keys, campaign: Campaign) -> None:
    """``votesvc flush``: flush until SIGTERM or SIGINT, finishing the batch in hand."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics = None
    if settings.metrics_port is not None:
        metrics = Metrics()
        serve_metrics(metrics.registry, settings.metrics_host, settings.metrics_port)
    try:
        await flush_until(settings, keys, campaign, stop, metrics)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def flush_until(
    settings: Settings,
    keys: Keys,
    campaign: Campaign,
    stop: asyncio.Event,
    metrics: Metrics | None = None,
) -> Flusher:
    """What ``votesvc flush`` runs until ``stop`` is set; returns the stopped flusher.

    Beside the flusher, the campaign is set up (``setup.settle_until``): its
    meta fixed and mirrored, Redis marked if the ledger is new; with
    ``metrics``, the ledger's gauges are sampled into it.
    """
    client = flusher_client(settings)
    flusher = build_flusher(settings, client, keys)
    learnt = await learn_cluster(client, stop)  # before the tasks below share the client
    setup_store = build_store(settings)
    setup = asyncio.create_task(
        settle_until(setup_store, client, keys, campaign, settings, stop), name="campaign-setup"
    )
    setup.add_done_callback(_stop_on_failure(stop))
    watcher = None
    if metrics is not None:
        watch = LedgerWatch(metrics, client, keys, flusher)
        watcher = asyncio.create_task(_watch(watch, stop), name="metrics")
    try:
        if learnt:
            await flusher.run(stop)
            await flusher.retire()
    finally:
        stop.set()
        if watcher is not None:
            await watcher
        try:
            await setup  # a ConfigError (this start disagrees with the campaign) ends here
        finally:
            await setup_store.close()
        await flusher.store.close()
        with contextlib.suppress(Exception):
            await client.aclose()
        log.info("ledger flusher %s stopped: %d votes written", flusher.consumer, flusher.written)
    return flusher


async def _watch(watch: LedgerWatch, stop: asyncio.Event) -> None:
    """``votesvc flush``'s metrics: the flusher's counts and the ledger's gauges.

    A sample that fails otherwise than by Redis being down is logged, and the
    sampling goes on (as the heartbeat's beats do: see ``heartbeat.py``).
    """
    failed = ThrottledLog(log, every=60.0)
    while True:
        try:
            await asyncio.wait_for(watch.sample(int(system_clock() * 1000)), timeout=2.0)
        except _UNSAMPLED as exc:
            log.debug("metrics: cannot sample Redis (%s)", exc)
        except Exception as exc:
            failed.warn("metrics: sampling the ledger failed (%r); sampling on", exc)
        if stop.is_set():
            return
        await wait_or_stop(stop, WATCH_EVERY)


def _stop_on_failure(stop: asyncio.Event) -> Callable[[asyncio.Task[Any]], None]:
    """A start that disagrees with the campaign (ConfigError) stops the flusher too."""

    def done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            stop.set()

    return done
