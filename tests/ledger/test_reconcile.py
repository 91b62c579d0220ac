"""Reconcile: live counts = ledger + pending, with the streams read in chunks."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tests.ledger.test_flusher import flusher_for
from tests.ledger_support import prefill_streams
from votesvc.keys import Keys
from votesvc.ledger import reconcile as reconcile_module
from votesvc.ledger.reconcile import pending_votes, reconcile
from votesvc.ledger.store import Store


async def test_streams_longer_than_a_chunk_are_read_whole(
    redis: aioredis.Redis, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconcile_module, "_XRANGE_CHUNK", 7)  # many chunks per stream
    keys = Keys("test-campaign", 4)
    counts = await prefill_streams(redis, keys, 300)
    result = await reconcile(redis, keys, store)
    assert result.clean
    assert result.pending == counts
    assert result.live == counts
    assert len(await pending_votes(redis, keys, store)) == 300
    # Flushed, then 50 more: the ledger holds the first, the streams the rest.
    flusher = flusher_for(redis, store, keys)
    await flusher.step()
    more = await prefill_streams(redis, keys, 50, first=300)
    result = await reconcile(redis, keys, store)
    assert result.clean
    assert sum(result.durable.values()) == 300
    assert sum(result.pending.values()) == 50 == sum(more.values())


async def test_a_count_without_its_entry_is_a_difference(
    redis: aioredis.Redis, store: Store
) -> None:
    keys = Keys("test-campaign", 4)
    await prefill_streams(redis, keys, 20)
    await redis.hincrby(keys.tally(2), "N05", 3)  # counted, but in no stream or ledger
    result = await reconcile(redis, keys, store, pause=0.01)
    assert result.differences == {"N05": 3}
