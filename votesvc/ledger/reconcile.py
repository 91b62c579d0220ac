"""Reconciling Redis with the ledger: live counts = durable counts + pending votes.

A vote is *pending* while its stream entry is in Redis and its row is not in
the ledger yet. ``reconcile`` reads every shard's counter and its stream's
last entry id in one MULTI (a consistent picture of Redis that holds it for
microseconds, whatever the backlog), then the streams' entries up to those ids
in chunks, then asks the ledger which of those entries it already holds, then
the durable counts. An entry flushed and trimmed between the MULTI and its
chunk is in the ledger by then, so it is counted there. Votes cast while it
runs can make one reading disagree, so a difference is read again before it
is reported: on a quiet system the report is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from votesvc.connection import RedisClient
from votesvc.entry import VoteEntry
from votesvc.keys import Keys
from votesvc.ledger.store import Store

__all__ = ["PendingVote", "Reconciliation", "pending_votes", "reconcile"]

_XRANGE_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class PendingVote:
    shard: int
    vote_id: str
    nominee: str


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Per nominee: live (Redis), durable (valid ledger rows) and pending counts."""

    live: dict[str, int]
    durable: dict[str, int]
    pending: dict[str, int]
    differences: dict[str, int] = field(default_factory=dict)  # live - (durable + pending)

    @property
    def clean(self) -> bool:
        return not self.differences


async def _stream_votes(
    client: RedisClient, stream: str, shard: int, last: str = "+"
) -> list[PendingVote]:
    """The votes in ``stream`` up to entry id ``last``, read in chunks."""
    votes: list[PendingVote] = []
    start = "-"
    while True:
        entries: Any = await client.xrange(stream, start, last, count=_XRANGE_CHUNK)
        for _, fields in entries:
            try:
                entry = VoteEntry.from_fields(fields)
            except (KeyError, ValueError):
                continue  # malformed: the flusher skips it too, it is no vote
            votes.append(PendingVote(shard, entry.vote_id, entry.nominee))
        if len(entries) < _XRANGE_CHUNK:
            return votes
        start = "(" + entries[-1][0].decode()


async def _not_in_ledger(
    store: Store, campaign: str, votes: Sequence[PendingVote]
) -> list[PendingVote]:
    known: set[str] = set()
    for start in range(0, len(votes), _XRANGE_CHUNK):
        chunk = [vote.vote_id for vote in votes[start : start + _XRANGE_CHUNK]]
        known |= await store.existing_ids(campaign, chunk)
    return [vote for vote in votes if vote.vote_id not in known]


async def pending_votes(client: RedisClient, keys: Keys, store: Store) -> list[PendingVote]:
    """Votes in the Redis streams that the ledger does not hold yet."""
    votes: list[PendingVote] = []
    for shard, stream in enumerate(keys.streams()):
        votes += await _stream_votes(client, stream, shard)
    return await _not_in_ledger(store, keys.campaign_id, votes)


async def _read_once(
    client: RedisClient, keys: Keys, store: Store, *, cluster: bool
) -> Reconciliation:
    # One MULTI over every shard's counter and last stream entry (per shard on a cluster).
    pipe = client.pipeline(transaction=not cluster)
    for shard in range(keys.shards):
        pipe.hgetall(keys.tally(shard))
        pipe.xrevrange(keys.stream(shard), "+", "-", count=1)
    replies = await pipe.execute()
    live: dict[str, int] = {}
    in_streams: list[PendingVote] = []
    for shard in range(keys.shards):
        for nominee, votes in replies[2 * shard].items():
            live[nominee.decode()] = live.get(nominee.decode(), 0) + int(votes)
        last = replies[2 * shard + 1]
        if last:
            in_streams += await _stream_votes(
                client, keys.stream(shard), shard, last[0][0].decode()
            )
    pending: dict[str, int] = {}
    for vote in await _not_in_ledger(store, keys.campaign_id, in_streams):
        pending[vote.nominee] = pending.get(vote.nominee, 0) + 1
    durable = {t.nominee: t.votes for t in await store.totals(keys.campaign_id)}
    differences: dict[str, int] = {}
    for nominee in sorted(set(live) | set(durable) | set(pending)):
        delta = live.get(nominee, 0) - durable.get(nominee, 0) - pending.get(nominee, 0)
        if delta:
            differences[nominee] = delta
    return Reconciliation(live, durable, pending, differences)


async def reconcile(
    client: RedisClient,
    keys: Keys,
    store: Store,
    *,
    cluster: bool = False,
    attempts: int = 3,
    pause: float = 0.5,
) -> Reconciliation:
    """Compare Redis's live counts with the ledger plus pending votes."""
    result = await _read_once(client, keys, store, cluster=cluster)
    for _ in range(attempts - 1):
        if result.clean:
            break
        await asyncio.sleep(pause)  # votes in flight settle; a real gap stays
        result = await _read_once(client, keys, store, cluster=cluster)
    return result
