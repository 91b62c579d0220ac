"""The vote stream entry: defined once in Python, and what cast_vote.lua really writes."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.support import SECRET, FakeClock, make_campaign, phone
from votesvc.entry import ENTRY_FIELDS, VoteEntry
from votesvc.keys import Keys
from votesvc.meta import write_markers
from votesvc.phones import hash_phone
from votesvc.scripts import register_scripts
from votesvc.settings import Settings
from votesvc.votes import ACCEPTED, VoteCaster


async def test_cast_vote_writes_exactly_the_entry_fields(redis: aioredis.Redis) -> None:
    campaign = make_campaign()
    keys = Keys(campaign.id, 4)
    clock = FakeClock()
    caster = VoteCaster(redis, campaign, keys, clock, Settings(shards=4))
    await register_scripts(redis)
    await write_markers(redis, keys)
    nominee = campaign.nominee("N03")
    assert nominee is not None
    phone_hash = hash_phone(SECRET, phone(1))
    before = time.time()
    status, _, vote_id = await caster.cast(nominee, phone_hash, "00000000000000ab")
    after = time.time()
    assert status == ACCEPTED
    entries: Any = await redis.xrange(keys.stream(keys.shard_of(phone_hash)))
    [(_, fields)] = entries
    assert tuple(name.decode() for name in fields) == ENTRY_FIELDS
    entry = VoteEntry.from_fields(fields)
    # accepted at the Redis server's time (this machine's clock), not the caster's clock
    assert (before - 1) * 1000 <= entry.accepted_at <= (after + 1) * 1000
    assert entry == VoteEntry(vote_id, entry.accepted_at, "N03", phone_hash, "00000000000000ab")


def test_fields_round_trip() -> None:
    entry = VoteEntry("019aa8", 1_780_000_000_123, "N07", "ab" * 32, "cd" * 8)
    raw = {name.encode(): value.encode() for name, value in entry.fields().items()}
    assert VoteEntry.from_fields(raw) == entry


@pytest.mark.parametrize("missing", ENTRY_FIELDS)
def test_a_missing_field_is_malformed(missing: str) -> None:
    entry = VoteEntry("019aa8", 1, "N07", "ab", "cd")
    raw = {name.encode(): value.encode() for name, value in entry.fields().items()}
    del raw[missing.encode()]
    with pytest.raises(KeyError):
        VoteEntry.from_fields(raw)
