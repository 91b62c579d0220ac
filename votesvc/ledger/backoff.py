"""Waiting while something is down: doubling delays, cut short by a stop event.

:data:`REDIS_DOWN` is what "Redis cannot be reached" raises, for the ledger
side's waits and retries: redis-py's errors, the socket's, and the cluster
client's RedisClusterException, which is no RedisError and is what it raises
once no node of the cluster answers ("Redis Cluster cannot be connected").
"""

from __future__ import annotations

import asyncio
import contextlib

from redis.exceptions import RedisClusterException, RedisError

__all__ = ["REDIS_DOWN", "Backoff", "wait_or_stop"]

REDIS_DOWN: tuple[type[Exception], ...] = (RedisError, RedisClusterException, OSError)

_BACKOFF_START = 0.05


class Backoff:
    """Waits that double from ``_BACKOFF_START`` up to ``cap`` seconds, while something is down."""

    __slots__ = ("_cap", "_next")

    def __init__(self, cap: float) -> None:
        self._cap = cap
        self._next = _BACKOFF_START

    def reset(self) -> None:
        self._next = _BACKOFF_START

    async def wait(self, stop: asyncio.Event | None) -> None:
        """Wait the current delay (less if ``stop`` is set meanwhile), then double it."""
        await wait_or_stop(stop, self._next)
        self._next = min(self._next * 2, self._cap)


async def wait_or_stop(stop: asyncio.Event | None, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    if seconds <= 0:
        return
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
