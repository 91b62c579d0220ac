"""Opening the Redis client the service talks through.

Timeouts are short on purpose: a vote that cannot reach Redis gets ``503``
well within a second instead of hanging. Nothing is retried: a vote script
whose reply was lost may have run, and running it again is not the client's
call to make. After a Redis restart the first call on each stale pooled
connection fails (503) and the next one connects afresh.

On a single Redis, commands are packed by hiredis (already installed for the
reply parser): the asyncio client packs in Python, which costs a vote batch's
EVALSHA (an argument per vote, three keys per shard) several times more
server CPU than hiredis does. The cluster client keeps redis-py's packing.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from votesvc.settings import Settings

__all__ = ["RedisClient", "connect"]

RedisClient: TypeAlias = Redis | RedisCluster


class _HiredisPacking(AbstractConnection):
    """A connection whose commands are packed by hiredis (C) instead of in Python."""

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]  # "CONFIG SET" goes on the wire as two words, as redis-py sends it
        if " " in name if isinstance(name, str) else b" " in name:
            args = (*name.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # a type hiredis does not pack: redis-py's own rules and errors
            return super().pack_command(*args)


class _FastConnection(_HiredisPacking, Connection):
    pass


class _FastSSLConnection(_HiredisPacking, SSLConnection):
    pass


class _FastUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


_FAST: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _FastConnection,
    SSLConnection: _FastSSLConnection,
    UnixDomainSocketConnection: _FastUnixConnection,
}


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
    client = Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
    pool = client.connection_pool  # no connection is open yet: swap the class they get
    pool.connection_class = _FAST.get(pool.connection_class, pool.connection_class)
    return client
