"""Opening the Redis client the service talks through.

Timeouts are short on purpose: a vote that cannot reach Redis gets ``503``
well within a second instead of hanging. Nothing is retried: a vote script
whose reply was lost may have run, and running it again is not the client's
call to make. After a Redis restart the first call on each stale pooled
connection fails (503) and the next one connects afresh.
"""

from __future__ import annotations

from typing import TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from votesvc.settings import Settings

__all__ = ["RedisClient", "connect"]

RedisClient: TypeAlias = Redis | RedisCluster


def connect(settings: Settings) -> RedisClient:
    """A client for ``settings.redis_url`` (opened lazily, closed with ``aclose()``)."""
    if settings.redis_url is None:
        raise ValueError("settings.redis_url must be set (the CLI starts an embedded server)")
    timeout = settings.redis_timeout
    if settings.redis_cluster:
        return RedisCluster.from_url(
            settings.redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
