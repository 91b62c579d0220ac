"""Whole processes killed mid-work: no accepted vote is lost, none is doubled."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.ledger_fixtures import ledger_settings
from tests.ledger_support import prefill_streams, votesvc_process, write_campaign
from tests.localhost import free_port
from tests.support import phone, wait_for
from votesvc.keys import Keys
from votesvc.ledger.flusher import GROUP
from votesvc.ledger.reconcile import reconcile
from votesvc.ledger.store import Store
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

pytestmark = pytest.mark.slow

CAMPAIGN = "test-campaign"
INTERVAL = 0.3


def process_settings(
    tmp_path: Path, redis_server: EmbeddedRedis, database_url: str | None, **kwargs: Any
) -> Settings:
    path = tmp_path / "campaign.toml"
    write_campaign(path)
    return ledger_settings(
        tmp_path,
        database_url,
        redis_url=redis_server.url,
        campaign_path=path,
        flush_interval=INTERVAL,
        **kwargs,
    )


async def pending_total(redis: Any, keys: Keys) -> int:
    return sum([(await redis.xpending(s, GROUP))["pending"] for s in keys.streams()])


async def test_a_flusher_killed_mid_batch_loses_and_doubles_nothing(
    redis: aioredis.Redis,
    redis_server: EmbeddedRedis,
    tmp_path: Path,
    database_url: str | None,
    store: Store,
) -> None:
    keys = Keys(CAMPAIGN, 16)
    total = 40_000
    counts = await prefill_streams(redis, keys, total)
    settings = process_settings(tmp_path, redis_server, database_url, flush_batch=800)

    async def started() -> bool:
        return await store.count(CAMPAIGN) > 0

    with votesvc_process(settings, "flush") as first:
        await wait_for(started, within=20.0, interval=0.005)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert await store.count(CAMPAIGN) < total, "killed too late to prove anything"

    async def all_flushed() -> bool:
        return await store.count(CAMPAIGN) == total

    with votesvc_process(settings, "flush") as second:
        await wait_for(all_flushed, within=30.0)
        assert await pending_total(redis, keys) == 0
        assert sum([await redis.xlen(s) for s in keys.streams()]) == 0
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0
    assert {t.nominee: t.votes for t in await store.totals(CAMPAIGN)} == counts
    assert (await reconcile(redis, keys, store)).clean


async def test_sigterm_finishes_the_batch_in_hand(
    redis: aioredis.Redis,
    redis_server: EmbeddedRedis,
    tmp_path: Path,
    database_url: str | None,
    store: Store,
) -> None:
    keys = Keys(CAMPAIGN, 16)
    total = 40_000
    await prefill_streams(redis, keys, total)
    settings = process_settings(tmp_path, redis_server, database_url, flush_batch=800)

    async def started() -> bool:
        return await store.count(CAMPAIGN) > 0

    with votesvc_process(settings, "flush") as flusher:
        await wait_for(started, within=20.0, interval=0.005)
        flusher.send_signal(signal.SIGTERM)
        assert flusher.wait(timeout=20) == 0
    # Everything it read was written and acknowledged; the rest waits in the streams.
    assert await pending_total(redis, keys) == 0
    in_streams = sum([await redis.xlen(s) for s in keys.streams()])
    assert await store.count(CAMPAIGN) + in_streams == total


async def _vote_until_refused(port: int, accepted: list[str], stop: asyncio.Event) -> None:
    counter = iter(range(10**9))

    async def worker(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            n = next(counter)
            try:
                response = await client.post(
                    "/v1/votes", json={"nominee": f"N{n % 30 + 1:02d}", "phone": phone(n)}
                )
            except httpx.HTTPError:
                return  # the server is gone: this vote got no 201
            if response.status_code == 201:
                accepted.append(response.json()["vote_id"])

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(16)))


async def _wait_healthy(port: int) -> None:
    async def healthy() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient(timeout=1.0) as client:
                response = await client.get(f"http://127.0.0.1:{port}/readyz")
                return response.status_code == 200
        return False

    await wait_for(healthy, within=30.0, interval=0.05)


async def test_serve_killed_under_load_keeps_every_201(
    redis: aioredis.Redis,
    redis_server: EmbeddedRedis,
    tmp_path: Path,
    database_url: str | None,
    store: Store,
) -> None:
    keys = Keys(CAMPAIGN, 16)
    settings = process_settings(tmp_path, redis_server, database_url)
    port = free_port()
    accepted: list[str] = []
    stop = asyncio.Event()
    with votesvc_process(settings, "serve", "--port", str(port)) as server:
        await _wait_healthy(port)
        load = asyncio.create_task(_vote_until_refused(port, accepted, stop))

        async def busy() -> bool:
            return len(accepted) >= 600

        try:
            await wait_for(busy, within=30.0)
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
            await asyncio.wait_for(load, 15)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(load, 15)
    assert accepted
    with votesvc_process(settings, "serve", "--port", str(port)):
        await _wait_healthy(port)
        back = time.monotonic()

        async def all_durable() -> bool:
            return await store.existing_ids(CAMPAIGN, accepted) == set(accepted)

        await wait_for(all_durable, within=2 * INTERVAL + 5.0)
        elapsed = time.monotonic() - back
        assert elapsed < 2 * INTERVAL + 5.0
        assert (await reconcile(redis, keys, store)).clean
