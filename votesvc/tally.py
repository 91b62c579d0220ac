"""The live tally: one snapshot per process, refreshed on a schedule.

A background task reads every counter shard once per ``refresh`` interval
(one round trip) and prepares the response body and its ETag, so serving
``GET /v1/tally`` costs no Redis call and no serialisation per request. The
ETag hashes only the counts (and the stale flag), so it changes only when a
count changes and is the same in every process. While Redis is down the last
snapshot is kept and marked stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.exceptions import RedisError

from votesvc.campaign import Campaign
from votesvc.connection import RedisClient
from votesvc.days import Clock
from votesvc.keys import Keys
from votesvc.logs import ThrottledLog

__all__ = ["Snapshot", "TallyBoard", "rank", "read_counts"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    counts: dict[str, int]
    total: int
    as_of: float
    stale: bool
    body: bytes  # the JSON of GET /v1/tally
    etag: str


async def read_counts(client: RedisClient, keys: Keys) -> dict[str, int]:
    """Live counts per nominee: the sum over every counter shard, in one round trip.

    On a single Redis the read is one MULTI, so the shards are read at one instant.
    """
    pipe = client.pipeline()
    for key in keys.tallies():
        pipe.hgetall(key)
    counts: dict[str, int] = {}
    for shard in await pipe.execute():
        for field, value in shard.items():
            nominee = field.decode()
            counts[nominee] = counts.get(nominee, 0) + int(value)
    return counts


def rank(counts: dict[str, int], order: list[str]) -> list[tuple[str, int, int]]:
    """(id, votes, rank) sorted by votes desc then id; ties share a rank (1, 2, 2, 4)."""
    ranked = sorted(order, key=lambda nid: (-counts.get(nid, 0), nid))
    rows: list[tuple[str, int, int]] = []
    previous = None
    place = 0
    for position, nid in enumerate(ranked, start=1):
        votes = counts.get(nid, 0)
        if votes != previous:
            place, previous = position, votes
        rows.append((nid, votes, place))
    return rows


class TallyBoard:
    """Holds the current snapshot and keeps it fresh."""

    def __init__(
        self,
        client: RedisClient,
        campaign: Campaign,
        keys: Keys,
        clock: Clock,
        refresh: float,
    ) -> None:
        self._client = client
        self._campaign = campaign
        self._keys = keys
        self._clock = clock
        self.refresh_interval = refresh
        self._ids = [n.id for n in campaign.nominees]
        self._known = set(self._ids)
        self.snapshot: Snapshot | None = None
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._down_log = ThrottledLog(log, every=10.0)

    async def read_counts(self) -> dict[str, int]:
        """The live counts of this campaign's nominees."""
        counts = dict.fromkeys(self._ids, 0)
        for nominee, votes in (await read_counts(self._client, self._keys)).items():
            if nominee in self._known:
                counts[nominee] = votes
        return counts

    async def refresh(self) -> Snapshot | None:
        """Read the counts once; on failure keep the last snapshot, marked stale."""
        try:
            counts = await self.read_counts()
        except (RedisError, OSError) as exc:
            self._down_log.warn("tally refresh failed: %s", exc)
            last = self.snapshot
            if last is not None and not last.stale:
                self._publish(self._build(last.counts, last.as_of, stale=True))
            return self.snapshot
        self._publish(self._build(counts, self._clock(), stale=False))
        return self.snapshot

    async def run(self) -> None:
        """Refresh until :meth:`stop` is called."""
        # A stop event rather than task.cancel(): a cancellation that lands inside
        # the Redis client can be absorbed there, and the loop would never end.
        while not self._stopping.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.refresh_interval)

    def stop(self) -> None:
        self._stopping.set()

    async def next_change(self) -> Snapshot | None:
        """Wait for the next snapshot whose counts or staleness differ."""
        await self._changed.wait()
        return self.snapshot

    def _publish(self, snapshot: Snapshot) -> None:
        previous = self.snapshot
        self.snapshot = snapshot
        if previous is None or previous.etag != snapshot.etag:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    def _build(self, counts: dict[str, int], as_of: float, *, stale: bool) -> Snapshot:
        campaign = self._campaign
        rows = rank(counts, self._ids)
        total = sum(counts.values())
        nominees: list[dict[str, Any]] = []
        for nid, votes, place in rows:
            nominee = campaign.nominee(nid)
            assert nominee is not None
            nominees.append(
                {
                    "id": nid,
                    "name": nominee.name,
                    "trade": nominee.trade,
                    "votes": votes,
                    "rank": place,
                }
            )
        body = orjson.dumps(
            {
                "campaign": campaign.id,
                "as_of": datetime.fromtimestamp(as_of, UTC).isoformat(timespec="milliseconds"),
                "stale": stale,
                "total": total,
                "nominees": nominees,
            }
        )
        fingerprint = ",".join(f"{nid}={votes}" for nid, votes, _ in rows)
        digest = hashlib.blake2b(
            f"{campaign.id}|{stale}|{fingerprint}".encode(), digest_size=10
        ).hexdigest()
        return Snapshot(counts, total, as_of, stale, body, f'W/"{digest}"')
