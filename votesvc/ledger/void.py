"""Voiding votes: marked void in the ledger, taken off the live counters, audited.

The streams are flushed first so that a vote cast a moment ago can be voided
too. The ledger update and its audit row are one transaction (a void that
matches no valid vote changes nothing and leaves no audit row); the live
counters are then decremented for exactly the rows that transaction voided,
so running the same void twice changes nothing the second time. The phone's
daily quota is left as it is: voiding gives no vote back.
"""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from votesvc.connection import RedisClient
from votesvc.days import Clock
from votesvc.errors import VotesvcError
from votesvc.keys import Keys
from votesvc.ledger.flusher import Flusher
from votesvc.ledger.store import AuditEntry, LedgerVote, Store

__all__ = ["LiveCountersNotUpdated", "VoidRequest", "Voided", "default_actor", "void_votes"]


class LiveCountersNotUpdated(VotesvcError):
    """The ledger was updated but Redis could not be; ``votesvc restore`` repairs it."""


@dataclass(frozen=True, slots=True)
class VoidRequest:
    reason: str
    actor: str
    vote_ids: tuple[str, ...] = ()
    phone_hash: str | None = None
    since: int | None = None  # epoch ms, inclusive
    until: int | None = None  # epoch ms, exclusive

    def criteria(self) -> dict[str, object]:
        if self.phone_hash is not None:
            return {"phone_hash": self.phone_hash, "since": self.since, "until": self.until}
        return {"vote_ids": list(self.vote_ids)}


@dataclass(frozen=True, slots=True)
class Voided:
    voided: list[LedgerVote]
    not_found: list[str]  # requested ids the ledger does not hold
    already_void: list[str]


def default_actor() -> str:
    """Who runs this command: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def void_votes(
    client: RedisClient,
    keys: Keys,
    store: Store,
    flusher: Flusher,
    request: VoidRequest,
    clock: Clock,
) -> Voided:
    """Void what ``request`` names; raises LiveCountersNotUpdated if Redis fails after."""
    await flusher.catch_up()
    campaign = keys.campaign_id
    audit = AuditEntry(
        at=int(clock() * 1000),
        actor=request.actor,
        action="void",
        detail=json.dumps(request.criteria(), sort_keys=True),
        reason=request.reason,
    )
    voided = await store.void(
        campaign,
        vote_ids=request.vote_ids,
        phone_hash=request.phone_hash,
        since=request.since,
        until=request.until,
        reason=request.reason,
        audit=audit,
    )
    not_found: list[str] = []
    already: list[str] = []
    if request.vote_ids:
        done = {vote.vote_id for vote in voided}
        rest = [vid for vid in request.vote_ids if vid not in done]
        known = await store.existing_ids(campaign, rest) if rest else set()
        not_found = [vid for vid in rest if vid not in known]
        already = [vid for vid in rest if vid in known]
    await _take_off_live_counters(client, keys, voided)
    return Voided(voided, not_found, already)


async def _take_off_live_counters(
    client: RedisClient, keys: Keys, voided: Sequence[LedgerVote]
) -> None:
    decrements: dict[tuple[int, str], int] = {}
    for vote in voided:
        key = (keys.shard_of(vote.phone_hash), vote.nominee)
        decrements[key] = decrements.get(key, 0) + 1
    if not decrements:
        return
    pipe = client.pipeline(transaction=False)
    for (shard, nominee), count in decrements.items():
        pipe.hincrby(keys.tally(shard), nominee, -count)
    try:
        await pipe.execute()
    except (RedisError, OSError) as exc:
        raise LiveCountersNotUpdated(
            f"{len(voided)} votes are void in the ledger but the live counters could not be "
            f"updated ({exc}); run `votesvc restore` once Redis answers"
        ) from exc
