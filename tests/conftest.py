"""Fixtures: a real Redis server (the project's own launcher), flushed per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.ledger_fixtures import database_url, pg_cluster, store  # noqa: F401
from tests.serving import serve  # noqa: F401
from tests.support import Service, running_service
from votesvc.redis_server import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-session"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis server of the test's own, which it may stop, stall or restart."""
    server = EmbeddedRedis(tmp_path / "own-redis")
    server.start()
    yield server
    if server.ping():
        server.stop()


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
async def service(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> AsyncIterator[Service]:
    async with running_service(redis_server.url, tmp_path) as running:
        yield running
