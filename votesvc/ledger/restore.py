"""Rebuilding Redis's counters from the ledger after Redis lost its data.

For every counter shard: the tally becomes the ledger's valid votes of that
shard, today's day records (dedup and daily quota) become the shard's votes
of today, void ones included (voiding gives no quota back), and the votes
still in the stream that the ledger does not hold are counted on top, all set
in one script call per shard (``lua/restore_shard.lua``).

The steps, and what holds:

1. The streams are flushed up to where they ended (``Flusher.catch_up``). If
   that fails, the restore stops there (:class:`RestoreRefused`): the markers
   and the counters are as they were, votes go on being taken.
2. The campaign is settled (its stored codes, its Redis mirror) and the
   markers are deleted: from then on the vote script refuses every vote (it
   checks a shard's marker in the same atomic call that appends to its
   stream), so no entry is appended to a stream any more; a flusher may only
   remove entries, and only once they are in the ledger.
3. Every stream is read (XRANGE), then the ledger is walked in one read
   transaction. An entry read in step 3 is counted once: from the ledger if
   the walk holds its vote id, else replayed on top. An entry gone from a
   stream before the read had been written to the ledger before the walk
   began, so the walk counts it. A flusher that writes an entry after the
   walk (one run with ``--force``) adds nothing twice: the figures are the
   walk's. So an entry both in the ledger and still in a stream (written, not
   yet acknowledged or trimmed) counts once.
4. Each shard is set in one script call; the script also replays any entry
   after the last one read, should the vote path have appended one despite
   step 2, so that no accepted vote goes uncounted.
5. The markers are written again: votes are taken.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from votesvc.campaign import Campaign
from votesvc.connection import RedisClient
from votesvc.days import Clock, campaign_day
from votesvc.entry import VoteEntry
from votesvc.errors import VotesvcError
from votesvc.keys import PHONE_KEY_CHARS, Keys
from votesvc.ledger.flusher import Flusher
from votesvc.ledger.setup import settle_campaign
from votesvc.ledger.store import Store, StoreUnavailable
from votesvc.meta import delete_markers, write_markers
from votesvc.scripts import load_script
from votesvc.settings import Settings

__all__ = ["RestoreRefused", "Restored", "restore"]

log = logging.getLogger(__name__)

_XRANGE_CHUNK = 10_000


class RestoreRefused(VotesvcError):
    """The restore did not start: Redis and the ledger are as they were."""


@dataclass(frozen=True, slots=True)
class Restored:
    valid_votes: int
    phones_today: int
    replayed: int  # stream entries counted on top of the ledger
    flushed_first: int


@dataclass(slots=True)
class _Stream:
    """One shard's stream as read after the markers went: its votes and last entry id."""

    votes: dict[str, VoteEntry]  # vote id -> entry
    last_id: str | None = None


async def restore(
    client: RedisClient,
    keys: Keys,
    store: Store,
    campaign: Campaign,
    settings: Settings,
    flusher: Flusher,
    clock: Clock,
) -> Restored:
    """Rebuild every shard's counters and today's day records from the ledger.

    Raises RestoreRefused when the streams cannot be flushed first (nothing
    changed), ConfigError when this start disagrees with the campaign's stored
    meta, StoreUnavailable or RedisError when either fails later.
    """
    try:
        flushed = await flusher.catch_up()
    except StoreUnavailable as exc:
        raise RestoreRefused(
            f"the votes pending in Redis could not be flushed into the ledger first ({exc}); "
            "nothing was changed"
        ) from exc
    campaign = await settle_campaign(store, client, keys, campaign, settings, mark=False)
    await delete_markers(client, keys)  # votes wait (503) until the markers are back
    streams = [await _read_stream(client, keys.stream(shard)) for shard in range(keys.shards)]
    in_streams = {vote_id: shard for shard, s in enumerate(streams) for vote_id in s.votes}

    day = campaign_day(clock(), campaign.timezone)
    day_start_ms, day_end_ms = int(day.start * 1000), int(day.end * 1000)
    tallies: list[dict[str, int]] = [{} for _ in range(keys.shards)]
    days: list[dict[str, str]] = [{} for _ in range(keys.shards)]
    codes = {nominee.id: nominee.code for nominee in campaign.nominees}

    def count(shard: int, nominee: str, phone_hash: str, accepted_at: int, valid: bool) -> None:
        if valid:
            tally = tallies[shard]
            tally[nominee] = tally.get(nominee, 0) + 1
        if day_start_ms <= accepted_at < day_end_ms and nominee in codes:
            phone_key = keys.phone_key(phone_hash)
            record = days[shard]
            record[phone_key] = record.get(phone_key, "") + codes[nominee]

    valid = 0
    async for chunk in store.votes(keys.campaign_id):
        for vote in chunk:
            held_by = in_streams.pop(vote.vote_id, None)
            if held_by is not None:  # in the ledger: counted from there, not replayed
                del streams[held_by].votes[vote.vote_id]
            shard = keys.shard_of(vote.phone_hash)
            count(shard, vote.nominee, vote.phone_hash, vote.accepted_at, not vote.void)
            valid += not vote.void
    replayed = 0
    for shard, stream in enumerate(streams):
        for entry in stream.votes.values():
            count(shard, entry.nominee, entry.phone_hash, entry.accepted_at, True)
            replayed += 1

    script = load_script("restore_shard")
    head: list[str | int] = [day_start_ms, day_end_ms, int(day.end) + 60, PHONE_KEY_CHARS]
    head.append(len(codes))
    for nominee_id, code in codes.items():
        head += (nominee_id, code)
    for shard, stream in enumerate(streams):
        args = [*head, stream.last_id or "", len(tallies[shard])]
        for nominee_id, votes in tallies[shard].items():
            args += (nominee_id, votes)
        args.append(len(days[shard]))
        for phone_key, voted in days[shard].items():
            args += (phone_key, voted)
        late = int(
            await script(
                client,
                [keys.tally(shard), keys.day(shard, day.label), keys.stream(shard)],
                args,
            )
        )
        if late:
            log.warning("restore: %d votes reached shard %d after its markers went", late, shard)
        replayed += late
    await write_markers(client, keys)
    phones = sum(len(record) for record in days)
    log.info("restored %d valid votes, %d phones today, %d pending", valid, phones, replayed)
    return Restored(valid, phones, replayed, flushed)


async def _read_stream(client: RedisClient, stream: str) -> _Stream:
    """Every vote in ``stream``, read in chunks (a malformed entry is no vote: skipped)."""
    read = _Stream({})
    start = "-"
    while True:
        entries: Any = await client.xrange(stream, start, "+", count=_XRANGE_CHUNK)
        for entry_id, fields in entries:
            read.last_id = entry_id.decode()
            try:
                vote = VoteEntry.from_fields(fields)
            except (KeyError, ValueError):
                continue  # the flusher skips it too
            read.votes[vote.vote_id] = vote
        if len(entries) < _XRANGE_CHUNK:
            return read
        start = "(" + entries[-1][0].decode()
