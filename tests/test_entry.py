"""The vote stream entry: defined once in Python, and what cast_vote.lua really writes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.support import SECRET, FakeClock, make_campaign, phone
from votesvc.entry import ENTRY_FIELDS, UNVERIFIED, VoteEntry
from votesvc.errors import RedisUnavailable
from votesvc.keys import Keys
from votesvc.meta import write_markers
from votesvc.phones import hash_phone
from votesvc.scripts import register_scripts
from votesvc.settings import Settings
from votesvc.votes import ACCEPTED, VoteCaster

PARTNER = "partner:app12351"


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
    status, _, vote_id = await caster.cast(
        nominee, phone_hash, "00000000000000ab", prefix_hash="00000000000000cd"
    )
    after = time.time()
    assert status == ACCEPTED
    entries: Any = await redis.xrange(keys.stream(keys.shard_of(phone_hash)))
    [(_, fields)] = entries
    assert tuple(name.decode() for name in fields) == ENTRY_FIELDS
    entry = VoteEntry.from_fields(fields)
    # accepted at the Redis server's time (this machine's clock), not the caster's clock
    assert (before - 1) * 1000 <= entry.accepted_at <= (after + 1) * 1000
    assert entry == VoteEntry(
        vote_id,
        entry.accepted_at,
        "N03",
        phone_hash,
        "00000000000000ab",
        UNVERIFIED,
        "0" * 14 + "cd",
    )


class Votes:
    """A VoteCaster on a real Redis (4 shards, every marker written) and its stream entries."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.campaign = make_campaign()
        self.keys = Keys(self.campaign.id, 4)
        self.caster = VoteCaster(redis, self.campaign, self.keys, FakeClock(), Settings(shards=4))

    def cast(self, n: int, *, key: str = "", method: str | None = None) -> asyncio.Future[Any]:
        """phone(n)'s vote for N01 (``method`` None: the caster's default)."""
        nominee = self.campaign.nominee("N01")
        assert nominee is not None
        ip_hash = f"{n:016x}"
        if method is None:
            return self.caster.cast(nominee, hashed(n), ip_hash, key)
        return self.caster.cast(nominee, hashed(n), ip_hash, key, method)

    async def methods(self) -> dict[str, str]:
        """Vote id -> the verification method its stream entry records."""
        found: dict[str, str] = {}
        for stream in self.keys.streams():
            entries: Any = await self.redis.xrange(stream)
            for _, fields in entries:
                assert tuple(name.decode() for name in fields) == ENTRY_FIELDS
                entry = VoteEntry.from_fields(fields)
                found[entry.vote_id] = entry.method
        return found


def hashed(n: int) -> str:
    return hash_phone(SECRET, phone(n))


@pytest.fixture
async def votes(redis: aioredis.Redis) -> Votes:
    await register_scripts(redis)
    votes = Votes(redis)
    await write_markers(redis, votes.keys)
    return votes


# cast_vote.lua parses a vote in its early pass only when the batch has a vote
# with an idempotency key or a shard without its marker: each test casts one
# batch (every ballot queued in one loop turn) and takes one of the paths.


async def test_a_batch_without_keys_records_each_vote_s_method(votes: Votes) -> None:
    batch = [votes.cast(1), votes.cast(2, method="sms"), votes.cast(3, method=PARTNER)]
    outcomes = await asyncio.gather(*batch)
    assert [status for status, _, _ in outcomes] == [ACCEPTED] * 3
    assert await votes.methods() == {
        outcomes[0][2]: UNVERIFIED,
        outcomes[1][2]: "sms",
        outcomes[2][2]: PARTNER,
    }


async def test_a_batch_with_keys_records_each_vote_s_method(votes: Votes) -> None:
    batch = [
        votes.cast(1, key="click-1", method=PARTNER),
        votes.cast(2, method="sms"),
        votes.cast(3, key="click-3"),
    ]
    outcomes = await asyncio.gather(*batch)
    assert [status for status, _, _ in outcomes] == [ACCEPTED] * 3
    assert await votes.methods() == {
        outcomes[0][2]: PARTNER,
        outcomes[1][2]: "sms",
        outcomes[2][2]: UNVERIFIED,
    }


async def test_a_batch_with_a_lost_shard_records_the_method_of_the_others(
    votes: Votes,
) -> None:
    lost = votes.keys.shard_of(hashed(1))
    intact = next(n for n in range(2, 50) if votes.keys.shard_of(hashed(n)) != lost)
    await votes.redis.delete(votes.keys.marker(lost))
    outcomes = await asyncio.gather(
        votes.cast(1, method="sms"), votes.cast(intact, method=PARTNER), return_exceptions=True
    )
    assert isinstance(outcomes[0], RedisUnavailable)
    assert isinstance(outcomes[1], tuple)
    status, _, vote_id = outcomes[1]
    assert status == ACCEPTED
    assert await votes.methods() == {vote_id: PARTNER}


def test_fields_round_trip() -> None:
    entry = VoteEntry("019aa8", 1_780_000_000_123, "N07", "ab" * 32, "cd" * 8, PARTNER)
    raw = {name.encode(): value.encode() for name, value in entry.fields().items()}
    assert VoteEntry.from_fields(raw) == entry


def test_an_entry_of_the_previous_release_without_a_method_is_unverified() -> None:
    raw = {b"id": b"019aa8", b"ts": b"1", b"n": b"N07", b"p": b"ab", b"ip": b"cd"}
    assert VoteEntry.from_fields(raw) == VoteEntry("019aa8", 1, "N07", "ab", "cd", UNVERIFIED)


def test_an_entry_of_the_previous_release_without_a_prefix_has_none() -> None:
    raw = {b"id": b"019aa8", b"ts": b"1", b"n": b"N07", b"p": b"ab", b"ip": b"cd", b"m": b"sms"}
    assert VoteEntry.from_fields(raw).prefix_hash == ""


async def test_each_vote_of_a_batch_records_its_prefix(votes: Votes) -> None:
    nominee = votes.campaign.nominee("N02")
    assert nominee is not None
    batch = [
        votes.caster.cast(nominee, hashed(n), f"{n:016x}", key, prefix_hash=prefix)
        for n, key, prefix in ((1, "", "a" * 16), (2, "k-2", "b" * 16), (3, "", ""))
    ]
    outcomes = await asyncio.gather(*batch)
    assert [status for status, _, _ in outcomes] == [ACCEPTED] * 3
    found = {}
    for stream in votes.keys.streams():
        entries: Any = await votes.redis.xrange(stream)
        for _, fields in entries:
            entry = VoteEntry.from_fields(fields)
            found[entry.vote_id] = (entry.prefix_hash, entry.ip_hash)
    assert found == {
        outcomes[0][2]: ("a" * 16, f"{1:016x}"),
        outcomes[1][2]: ("b" * 16, f"{2:016x}"),
        outcomes[2][2]: ("", f"{3:016x}"),
    }


@pytest.mark.parametrize("missing", [name for name in ENTRY_FIELDS if name not in ("m", "px")])
def test_a_missing_field_is_malformed(missing: str) -> None:
    entry = VoteEntry("019aa8", 1, "N07", "ab", "cd", "sms")
    raw = {name.encode(): value.encode() for name, value in entry.fields().items()}
    del raw[missing.encode()]
    with pytest.raises(KeyError):
        VoteEntry.from_fields(raw)
