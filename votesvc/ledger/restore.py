"""Rebuilding Redis's counters from the ledger after Redis lost its data.

For every counter shard: the tally becomes the ledger's valid votes of that
shard, today's day records (dedup and daily quota) become the shard's votes
of today, void ones included (voiding gives no quota back), and the votes
still in the stream (not in the ledger yet) are counted on top, all in one
script call per shard (``lua/restore_shard.lua``).

The stream is first flushed into the ledger; no other flusher may write while
this runs, or a vote it moves between the two could be counted twice (the
caller checks the flushers' heartbeats, ``heartbeat.live_flushers``;
``reconcile`` afterwards confirms the result).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from votesvc.campaign import Campaign
from votesvc.connection import RedisClient
from votesvc.days import Clock, campaign_day
from votesvc.keys import PHONE_KEY_CHARS, Keys
from votesvc.ledger.flusher import Flusher
from votesvc.ledger.store import Store
from votesvc.scripts import load_script

__all__ = ["Restored", "restore"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Restored:
    valid_votes: int
    phones_today: int
    replayed: int  # stream entries counted on top of the ledger
    flushed_first: int


async def restore(
    client: RedisClient,
    keys: Keys,
    store: Store,
    campaign: Campaign,
    flusher: Flusher,
    clock: Clock,
) -> Restored:
    """Rebuild every shard's counters and today's day records from the ledger."""
    flushed = await flusher.catch_up()
    day = campaign_day(clock(), campaign.timezone)
    day_start_ms, day_end_ms = int(day.start * 1000), int(day.end * 1000)
    tallies: list[dict[str, int]] = [{} for _ in range(keys.shards)]
    days: list[dict[str, str]] = [{} for _ in range(keys.shards)]
    codes = {nominee.id: nominee.code for nominee in campaign.nominees}
    valid = 0
    async for chunk in store.votes(keys.campaign_id):
        for vote in chunk:
            shard = keys.shard_of(vote.phone_hash)
            if not vote.void:
                tally = tallies[shard]
                tally[vote.nominee] = tally.get(vote.nominee, 0) + 1
                valid += 1
            if day_start_ms <= vote.accepted_at < day_end_ms and vote.nominee in codes:
                phone_key = keys.phone_key(vote.phone_hash)
                record = days[shard]
                record[phone_key] = record.get(phone_key, "") + codes[vote.nominee]
    script = load_script("restore_shard")
    replayed = 0
    head: list[str | int] = [day_start_ms, day_end_ms, int(day.end) + 60, PHONE_KEY_CHARS]
    head.append(len(codes))
    for nominee_id, code in codes.items():
        head += (nominee_id, code)
    for shard in range(keys.shards):
        args = list(head)
        args.append(len(tallies[shard]))
        for nominee_id, votes in tallies[shard].items():
            args += (nominee_id, votes)
        args.append(len(days[shard]))
        for phone_key, voted in days[shard].items():
            args += (phone_key, voted)
        replayed += int(
            await script(
                client,
                [keys.tally(shard), keys.day(shard, day.label), keys.stream(shard)],
                args,
            )
        )
    phones = sum(len(record) for record in days)
    log.info("restored %d valid votes, %d phones today, %d pending", valid, phones, replayed)
    return Restored(valid, phones, replayed, flushed)
