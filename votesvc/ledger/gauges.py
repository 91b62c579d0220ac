"""How far the ledger is behind the vote streams, for the metrics.

The backlog is every accepted vote not in the ledger yet: entries read by a
flusher but not acknowledged (pending) plus entries no flusher has read (the
consumer group's ``lag``). The lag in time is the age of the oldest of them,
read from its stream id (its Redis time in ms). One sample costs a few
commands per stream, every few seconds: nothing next to the vote traffic.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from votesvc.connection import RedisClient
from votesvc.keys import Keys
from votesvc.ledger.entries import parse_stream_id, text
from votesvc.ledger.flusher import GROUP, Flusher
from votesvc.ledger.heartbeat import live_flushers
from votesvc.metrics import Metrics

__all__ = ["LedgerGauges", "LedgerWatch", "sample_ledger"]

ALIVE_WITHIN = 10.0  # seconds since a flusher's last heartbeat for it to count as alive


@dataclass(frozen=True, slots=True)
class LedgerGauges:
    backlog: int  # votes
    oldest_ms: int | None  # Redis time of the oldest vote not in the ledger
    flushers_alive: int


async def sample_ledger(client: RedisClient, keys: Keys) -> LedgerGauges:
    """One reading of the backlog, its oldest vote and the live flushers."""
    shards = await asyncio.gather(*(_stream(client, stream) for stream in keys.streams()))
    backlog = sum(count for count, _ in shards)
    oldest = [ms for _, ms in shards if ms is not None]
    alive = await live_flushers(client, keys, within=ALIVE_WITHIN)
    return LedgerGauges(backlog, min(oldest) if oldest else None, len(alive))


async def _stream(client: RedisClient, stream: str) -> tuple[int, int | None]:
    """(votes not in the ledger, Redis ms of the oldest) for one stream."""
    try:
        groups: Any = await client.xinfo_groups(stream)
    except ResponseError:  # no stream yet: nothing was voted on this shard
        return 0, None
    group = next((g for g in groups if text(g["name"]) == GROUP), None)
    if group is None:  # no flusher has started: every entry waits
        length = int(await client.xlen(stream))
        first: Any = await client.xrange(stream, count=1)
        return length, _ms(first[0][0]) if first else None
    pending = int(group["pending"])
    unread = int(group.get("lag") or 0)
    oldest: int | None = None
    if pending:
        summary: Any = await client.xpending(stream, GROUP)
        # None: acknowledged since XINFO GROUPS (a flusher works meanwhile)
        oldest = None if summary["min"] is None else _ms(summary["min"])
    elif unread:
        after = "(" + text(group["last-delivered-id"])
        first = await client.xrange(stream, min=after, count=1)
        oldest = _ms(first[0][0]) if first else None
    return pending + unread, oldest


def _ms(stream_id: bytes | str) -> int:
    return parse_stream_id(stream_id)[0]


class LedgerWatch:
    """Feeds the flusher's counts and the ledger's gauges into :class:`Metrics`."""

    def __init__(
        self, metrics: Metrics, client: RedisClient, keys: Keys, flusher: Flusher | None
    ) -> None:
        self._metrics = metrics
        self._client = client
        self._keys = keys
        self._flusher = flusher
        self._written = self._errors = 0

    async def sample(self, now_ms: int) -> None:
        """Push the flusher's new counts, then read the backlog (RedisError when down)."""
        metrics, flusher = self._metrics, self._flusher
        if flusher is not None:
            metrics.flushed.inc(flusher.written - self._written)
            metrics.flush_errors.inc(flusher.write_errors - self._errors)
            self._written, self._errors = flusher.written, flusher.write_errors
        gauges = await sample_ledger(self._client, self._keys)
        metrics.backlog.set(gauges.backlog)
        oldest = gauges.oldest_ms
        metrics.lag.set(0 if oldest is None else max(0, now_ms - oldest) / 1000)
        metrics.flushers_alive.set(gauges.flushers_alive)
