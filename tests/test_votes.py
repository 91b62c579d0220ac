"""The batching vote path (votesvc/votes.py) against a real Redis.

Ballots cast in one event-loop turn travel as one batch; these tests check
that every caller of a batch gets its own outcome, that a batch that fails
fails alone and writes nothing, and that a caller going away harms nobody.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.support import SECRET, FakeClock, make_campaign, phone
from votesvc.campaign import Campaign
from votesvc.connection import RedisClient, connect
from votesvc.entry import UNVERIFIED, VoteEntry
from votesvc.errors import RedisUnavailable
from votesvc.keys import Keys
from votesvc.meta import write_markers
from votesvc.phones import hash_phone
from votesvc.redis_server import EmbeddedRedis
from votesvc.scripts import register_scripts
from votesvc.settings import Settings
from votesvc.votes import (
    ACCEPTED,
    ALREADY_VOTED,
    DAILY_LIMIT,
    KEY_CONFLICT,
    RATE_LIMITED,
    REPLAYED,
    Outcome,
    VoteCaster,
)

RULES = {
    "votes_per_phone_per_day": 4,
    "votes_per_nominee_per_phone_per_day": 1,
    "phone_burst_limit": 3,
    "phone_burst_seconds": 10,
    "ip_limit": 5,
    "ip_limit_seconds": 60,
}


class Caster:
    """A VoteCaster on a real Redis, with the helpers the tests need."""

    def __init__(self, client: RedisClient, campaign: Campaign) -> None:
        self.client = client
        self.campaign = campaign
        self.keys = Keys(campaign.id, 16)
        self.clock = FakeClock()
        self.caster = VoteCaster(client, campaign, self.keys, self.clock, Settings())

    @classmethod
    async def on(cls, client: RedisClient, campaign: Campaign) -> Caster:
        """A caster on ``client``, whose Redis holds the campaign (scripts, markers)."""
        caster = cls(client, campaign)
        await register_scripts(client)
        await write_markers(client, caster.keys)
        return caster

    def cast(
        self,
        nominee: str,
        n: int,
        ip: int | None = None,
        *,
        key: str = "",
        method: str = UNVERIFIED,
    ) -> asyncio.Future[Outcome]:
        """Queue phone(n)'s vote for ``nominee`` from IP number ``ip`` (default: its own)."""
        found = self.campaign.nominee(nominee)
        assert found is not None
        ip_hash = f"{n if ip is None else ip:016x}"
        return self.caster.cast(found, phone_hash(n), ip_hash, key, method)

    async def written(self) -> tuple[int, int]:
        """(votes in the tally, entries in the streams): always equal."""
        tally = 0
        for key in self.keys.tallies():
            tally += sum(int(v) for v in (await self.client.hgetall(key)).values())
        entries = 0
        for key in self.keys.streams():
            entries += await self.client.xlen(key)
        return tally, entries

    async def entries(self) -> list[VoteEntry]:
        """Every vote in the streams."""
        found = []
        for key in self.keys.streams():
            entries: Any = await self.client.xrange(key)
            found += [VoteEntry.from_fields(fields) for _, fields in entries]
        return found

    async def voted(self, n: int) -> bytes | None:
        """The nominee codes phone(n) voted for today (None: no record at all)."""
        phone_key = Keys.phone_key(phone_hash(n))
        shard = self.keys.shard_of(phone_hash(n))
        record = await self.client.hget(self.keys.day(shard, "20260615"), phone_key)
        if record is None:
            return None
        assert isinstance(record, bytes)
        return record.partition(b":")[0]


def phone_hash(n: int) -> str:
    return hash_phone(SECRET, phone(n))


async def script_calls(client: RedisClient) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.fixture
async def votes(redis: aioredis.Redis) -> AsyncIterator[Caster]:
    caster = await Caster.on(redis, make_campaign(**RULES))
    yield caster
    await caster.caster.drain()


async def test_one_batch_answers_each_caller_with_its_own_outcome(votes: Caster) -> None:
    # Earlier today: A voted for N01; B used all four of its votes.
    before = [votes.cast("N01", 1), votes.cast("N01", 2), votes.cast("N02", 2)]
    before.append(votes.cast("N03", 2))
    assert [status for status, _, _ in await asyncio.gather(*before)] == [ACCEPTED] * 4
    votes.clock.advance(11)  # past B's burst window, same day
    assert (await votes.cast("N04", 2))[0] == ACCEPTED
    votes.clock.advance(11)

    calls = await script_calls(votes.client)
    futures = {
        "A again for N01": votes.cast("N01", 1),
        "B over its day": votes.cast("N05", 2),
        "C 1st": votes.cast("N01", 3),
        "C 2nd": votes.cast("N02", 3),
        "C 3rd": votes.cast("N03", 3),
        "C 4th, over its burst": votes.cast("N04", 3),
        **{f"IP 77, phone {n}": votes.cast("N10", n, ip=77) for n in range(10, 16)},
        "D": votes.cast("N07", 4),
    }
    results = dict(zip(futures, await asyncio.gather(*futures.values()), strict=True))
    # the whole batch, IP limit and votes, was one round trip
    assert await script_calls(votes.client) - calls == 1

    assert results["A again for N01"] == (ALREADY_VOTED, 0, "")
    assert results["B over its day"] == (DAILY_LIMIT, 0, "")
    assert [results[f"C {nth}"][:2] for nth in ("1st", "2nd", "3rd")] == [
        (ACCEPTED, 3),
        (ACCEPTED, 2),
        (ACCEPTED, 1),
    ]
    status, retry_ms, vote_id = results["C 4th, over its burst"]
    assert (status, vote_id) == (RATE_LIMITED, "")
    assert 0 < retry_ms <= 10_000
    by_ip = [results[f"IP 77, phone {n}"] for n in range(10, 16)]
    assert [status for status, _, _ in by_ip] == [ACCEPTED] * 5 + [RATE_LIMITED]
    assert by_ip[-1][1] > 0
    assert results["D"][:2] == (ACCEPTED, 3)

    accepted = [r for r in results.values() if r[0] == ACCEPTED]
    vote_ids = [vote_id for _, _, vote_id in accepted]
    assert all(vote_ids)
    assert len(set(vote_ids)) == len(vote_ids) == 9
    assert await votes.written() == (5 + 9, 5 + 9)
    assert await votes.voted(3) == b"ABC"  # C's three accepted nominees, in order
    assert await votes.voted(15) is None  # refused by the IP limit: nothing recorded


async def test_a_replayed_key_answers_the_verified_vote_once(votes: Caster) -> None:
    method = "partner:app12351"
    first = await votes.cast("N01", 1, key="click-1", method=method)
    assert first[0] == ACCEPTED
    # Again in a later batch, then twice in one batch (the same key earlier in the call).
    again = await votes.cast("N01", 1, key="click-1", method=method)
    twice = await asyncio.gather(
        votes.cast("N02", 1, key="click-2", method="sms"),
        votes.cast("N02", 1, key="click-2", method="sms"),
        votes.cast("N03", 1, key="click-1", method=method),
    )
    assert again == (REPLAYED, first[1], first[2])
    assert twice[0][0] == ACCEPTED
    assert twice[1] == (REPLAYED, twice[0][1], twice[0][2])
    assert twice[2] == (KEY_CONFLICT, 0, "")
    stored = {entry.vote_id: entry.method for entry in await votes.entries()}
    assert stored == {first[2]: method, twice[0][2]: "sms"}


async def test_a_failed_batch_fails_only_its_own_callers(votes: Caster) -> None:
    # Phone 10's tally shard will hold the wrong type, so the second batch's script
    # errors on its first vote, before it writes any vote; the first batch's
    # phones live in other shards.
    shard = votes.keys.shard_of(phone_hash(10))
    first_phones = [n for n in range(1, 20) if votes.keys.shard_of(phone_hash(n)) != shard][:3]
    first = [votes.cast("N01", n) for n in first_phones]
    await asyncio.sleep(0)  # the first batch leaves; what follows forms a second one
    await votes.client.set(votes.keys.tally(shard), "not a hash")
    second = [votes.cast("N02", n) for n in range(10, 14)]

    outcomes = await asyncio.gather(*first, *second, return_exceptions=True)
    assert [o[0] for o in outcomes[:3] if isinstance(o, tuple)] == [ACCEPTED] * 3
    assert all(isinstance(o, RedisUnavailable) for o in outcomes[3:])
    assert await votes.client.get(votes.keys.tally(shard)) == b"not a hash"  # untouched
    await votes.client.delete(votes.keys.tally(shard))
    assert await votes.written() == (3, 3)
    for n in range(10, 14):
        assert await votes.voted(n) is None

    assert (await votes.cast("N02", 10))[0] == ACCEPTED  # nothing stuck behind it


async def test_a_batch_refused_by_redis_writes_nothing(
    own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    client = aioredis.Redis.from_url(own_redis.url)
    try:
        votes = await Caster.on(client, make_campaign(**RULES))
        assert (await votes.cast("N01", 1))[0] == ACCEPTED
        await client.config_set("maxmemory", 1)  # every write now fails with OOM
        batch = [votes.cast("N02", n) for n in range(1, 6)]
        outcomes = await asyncio.gather(*batch, return_exceptions=True)
        assert all(isinstance(o, RedisUnavailable) for o in outcomes)

        await client.config_set("maxmemory", 0)
        assert await votes.written() == (1, 1)
        assert await votes.voted(1) == b"A"
        for n in range(2, 6):
            assert await votes.voted(n) is None
        ip_keys = [key async for key in client.scan_iter(match="*:ip:*")]
        assert len(ip_keys) == 1  # only phone 1's IP was ever counted
        assert (await votes.cast("N02", 2))[0] == ACCEPTED
    finally:
        await client.aclose()


async def test_a_caller_gone_before_the_batch_leaves_casts_nothing(votes: Caster) -> None:
    staying = votes.cast("N01", 1)
    leaving = votes.cast("N01", 2)
    also_staying = votes.cast("N01", 3)
    leaving.cancel()
    assert (await staying)[0] == ACCEPTED
    assert (await also_staying)[0] == ACCEPTED
    assert leaving.cancelled()
    assert await votes.voted(2) is None
    assert await votes.written() == (2, 2)


async def test_a_caller_gone_while_its_batch_is_out_harms_nobody(votes: Caster) -> None:
    async def caller(n: int) -> Outcome:
        return await votes.cast("N01", n)

    callers = [asyncio.create_task(caller(n)) for n in range(1, 6)]
    for _ in range(3):  # the callers queue their ballots, the batch forms, and leaves
        await asyncio.sleep(0)
    callers[2].cancel()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert isinstance(results[2], asyncio.CancelledError)
    assert [r[0] for r in results if isinstance(r, tuple)] == [ACCEPTED] * 4
    # whether the gone caller's vote landed or not, the counts agree with each other
    tally, entries = await votes.written()
    assert tally == entries in (4, 5)
    assert (await votes.cast("N02", 3))[0] == ACCEPTED


async def test_a_script_run_after_its_deadline_changes_nothing(own_redis: EmbeddedRedis) -> None:
    client = connect(Settings(redis_url=own_redis.url))  # the shipped fail-fast budget
    try:
        votes = await Caster.on(client, make_campaign(**RULES))
        # The first reply teaches the caster the Redis server's clock.
        assert (await votes.cast("N01", 1))[0] == ACCEPTED
        before = await votes.written()
        # Redis stalls: these calls time out and their callers are answered 503;
        # Redis runs them only when it wakes up, past their deadline.
        pid = own_redis.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            late = [votes.cast("N02", 2), votes.cast("N03", 3)]
            outcomes = await asyncio.gather(*late, return_exceptions=True)
        finally:
            os.kill(pid, signal.SIGCONT)
        for outcome in outcomes:
            assert isinstance(outcome, RedisUnavailable)
        assert await votes.written() == before
        assert await votes.voted(2) is None
        # nothing is stuck: the next vote is on time
        assert (await votes.cast("N02", 2))[0] == ACCEPTED
    finally:
        await client.aclose()
