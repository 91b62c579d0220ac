"""Waiting while something is down: doubling delays, cut short by a stop event."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Backoff", "wait_or_stop"]

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
