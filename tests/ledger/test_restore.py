"""Rebuilding a shard (``lua/restore_shard.lua``): the caller's figures, then later entries.

The command's own behaviour (catch-up first, a vote counted once, refusals,
audit) is in test_cli.py.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from votesvc.entry import VoteEntry
from votesvc.keys import PHONE_KEY_CHARS, Keys
from votesvc.scripts import load_script

CAMPAIGN = "test-campaign"


async def test_a_shard_takes_the_figures_given_and_counts_entries_after_the_last_read(
    redis: aioredis.Redis,
) -> None:
    keys = Keys(CAMPAIGN, 16)
    tally, day, stream = keys.tally(0), keys.day(0, "today"), keys.stream(0)
    day_start = int(time.time() * 1000) - 60_000
    day_end = day_start + 86_400_000
    phones = [(f"{n:x}" * 64)[:64] for n in (1, 2, 3)]
    ids = []
    for n, nominee in enumerate(("N01", "N02", "N02")):
        fields: dict[Any, Any] = VoteEntry(
            f"{n:032x}", day_start + n, nominee, phones[n], "0" * 16
        ).fields()
        entry_id: Any = await redis.xadd(stream, fields)
        ids.append(entry_id.decode())
    await redis.hset(tally, "N09", 5)  # what the shard held before: replaced

    def args(last_read: str) -> list[str | int]:
        head: list[str | int] = [day_start, day_end, day_end // 1000 + 60, PHONE_KEY_CHARS]
        codes: list[str | int] = [2, "N01", "A", "N02", "B"]
        return [*head, *codes, last_read, 1, "N01", 7, 1, "f" * PHONE_KEY_CHARS, "A"]

    script = load_script("restore_shard")
    # The caller read the first entry (and counted it, if the ledger lacked it):
    # the two after it came since, and count on top.
    assert await script(redis, [tally, day, stream], args(ids[0])) == 2
    assert await redis.hgetall(tally) == {b"N01": b"7", b"N02": b"2"}
    key = Keys.phone_key
    assert await redis.hgetall(day) == {
        b"f" * PHONE_KEY_CHARS: b"A",
        key(phones[1]).encode(): b"B",
        key(phones[2]).encode(): b"B",
    }
    assert await redis.ttl(day) > 0
    # A caller that read nothing: every entry is after it.
    assert await script(redis, [tally, day, stream], args("")) == 3
    assert await redis.hgetall(tally) == {b"N01": b"8", b"N02": b"2"}
    # One that read them all: nothing on top.
    assert await script(redis, [tally, day, stream], args(ids[-1])) == 0
    assert await redis.hgetall(tally) == {b"N01": b"7"}
