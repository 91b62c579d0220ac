"""The ledger's gauges: the backlog and the age of its oldest vote, read while flushers work."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from tests.ledger_support import prefill_streams
from votesvc.keys import Keys
from votesvc.ledger.flusher import GROUP
from votesvc.ledger.gauges import sample_ledger

CAMPAIGN = "test-campaign"


class AcknowledgedMeanwhile:
    """A client on which a flusher acknowledges every pending entry just after
    XINFO GROUPS answered: the interleaving a busy fleet produces now and then."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def xinfo_groups(self, stream: str) -> Any:
        groups = await self._client.xinfo_groups(stream)
        for item in await self._client.xpending_range(stream, GROUP, "-", "+", 1000):
            await self._client.xack(stream, GROUP, item["message_id"])
        return groups


async def test_a_pending_vote_acknowledged_while_it_is_read_leaves_no_age(
    redis: aioredis.Redis,
) -> None:
    keys = Keys(CAMPAIGN, 2)
    await prefill_streams(redis, keys, 6)
    for stream in keys.streams():
        await redis.xgroup_create(stream, GROUP, "0")
        await redis.xreadgroup(GROUP, "flusher-1", {stream: ">"}, count=10)
    before = await sample_ledger(redis, keys)
    assert before.backlog == 6
    assert before.oldest_ms is not None

    during: Any = AcknowledgedMeanwhile(redis)
    gauges = await sample_ledger(during, keys)
    assert gauges.oldest_ms is None  # nothing pending any more: no age, and no crash
    assert (await sample_ledger(redis, keys)).backlog == 0
