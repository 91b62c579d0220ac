"""Voiding votes: a preview, then exactly its votes marked void, audited.

A void names votes by a :class:`VoteSelection` (vote ids, a phone's hash or a
nominee, within a time range). :func:`preview_void` says what it would do:
the valid votes it names now, how many each nominee would lose, and whether
the award's top places or a tie across the cut line would change; it freezes
the votes it found as one digest of their ids. :func:`confirm_void` voids
exactly those, or raises :class:`SelectionChanged` with a fresh preview when
the selection now names other votes (one was voided meanwhile, a new one
came in). The console shows the preview and confirms; ``votesvc void``
previews and confirms in one go (``--preview`` stops after the preview).

The streams are flushed first so that a vote cast a moment ago can be voided
too. The ledger update and its audit row (who, when, why, the selection, the
ids and the counts) are one transaction; the live counters are then
decremented for exactly the rows that transaction voided, so running the
same void twice changes nothing the second time. The phone's daily quota is
left as it is: voiding gives no vote back.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from votesvc.campaign import Campaign
from votesvc.connection import RedisClient
from votesvc.days import Clock
from votesvc.errors import VotesvcError
from votesvc.keys import Keys
from votesvc.ledger.award import Placing, rank_award
from votesvc.ledger.backoff import REDIS_DOWN
from votesvc.ledger.flusher import Flusher
from votesvc.ledger.store import AuditEntry, LedgerVote, Store, VoteSelection

__all__ = [
    "IDS_MAX",
    "CutTie",
    "LiveCountersNotUpdated",
    "SelectionChanged",
    "VoidPreview",
    "Voided",
    "confirm_void",
    "default_actor",
    "freeze",
    "preview_void",
    "void_votes",
]

_RETRIES = 3  # a command-line void whose votes change under it selects again, this often
IDS_MAX = 10_000  # vote ids one void may list (the console's form, a suspicious finding)


class LiveCountersNotUpdated(VotesvcError):
    """The ledger was updated but Redis could not be; ``votesvc restore`` repairs it."""

    def __init__(self, message: str, voided: Sequence[LedgerVote]) -> None:
        super().__init__(message)
        self.voided = list(voided)  # void in the ledger, still counted live


@dataclass(frozen=True, slots=True)
class CutTie:
    """Nominees with equal votes on both sides of the award's cut line."""

    votes: int
    above: tuple[str, ...]  # nominee ids the tie rule puts above the line
    below: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VoidPreview:
    """What a void of ``selection`` would do, as the ledger stands now."""

    selection: VoteSelection
    votes: list[LedgerVote]  # the valid votes it names, by time then id
    frozen: str  # the digest of their ids (:func:`freeze`): what a confirm must still find
    top: int  # the award's places
    before: list[Placing]
    after: list[Placing]

    @property
    def by_nominee(self) -> dict[str, int]:
        """Votes each nominee would lose, most first."""
        return dict(Counter(vote.nominee for vote in self.votes).most_common())

    @property
    def leaving(self) -> list[str]:
        """Nominees in the award now and out of it after."""
        after = {p.nominee.id for p in self.after if p.awarded}
        return [p.nominee.id for p in self.before if p.awarded and p.nominee.id not in after]

    @property
    def entering(self) -> list[str]:
        before = {p.nominee.id for p in self.before if p.awarded}
        return [p.nominee.id for p in self.after if p.awarded and p.nominee.id not in before]

    @property
    def tie_before(self) -> CutTie | None:
        return cut_tie(self.before, self.top)

    @property
    def tie_after(self) -> CutTie | None:
        return cut_tie(self.after, self.top)

    @property
    def changes_award(self) -> bool:
        """Whether the top places or a tie across the cut line would change."""
        return bool(self.leaving) or self.tie_before != self.tie_after


class SelectionChanged(VotesvcError):
    """The selection no longer names the votes the preview froze; ``preview`` is fresh."""

    def __init__(self, preview: VoidPreview) -> None:
        super().__init__("the votes this selection names changed since the preview")
        self.preview = preview


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


def freeze(vote_ids: Sequence[str]) -> str:
    """One digest for a set of vote ids (order and repeats do not matter)."""
    return hashlib.sha256("\n".join(sorted(set(vote_ids))).encode()).hexdigest()


def cut_tie(placings: list[Placing], top: int) -> CutTie | None:
    """The tie across the cut line after ``top`` places, if there is one."""
    if not 0 < top < len(placings) or placings[top - 1].votes != placings[top].votes:
        return None
    votes = placings[top].votes
    tied = [p for p in placings if p.votes == votes]
    return CutTie(
        votes,
        tuple(p.nominee.id for p in tied if p.awarded),
        tuple(p.nominee.id for p in tied if not p.awarded),
    )


async def preview_void(
    store: Store,
    flusher: Flusher,
    campaign: Campaign,
    selection: VoteSelection,
    *,
    top: int | None = None,
) -> VoidPreview:
    """What voiding ``selection`` would do (``top``: the award's places, the campaign's
    ``award_seats`` by default). Flushes the streams first; raises StoreUnavailable."""
    await flusher.catch_up()
    votes = await store.select_valid(campaign.id, selection)
    return await _preview(store, campaign, selection, votes, top)


async def _preview(
    store: Store,
    campaign: Campaign,
    selection: VoteSelection,
    votes: list[LedgerVote],
    top: int | None,
) -> VoidPreview:
    places = top or campaign.rules.award_seats
    ids = [vote.vote_id for vote in votes]
    # The award counts the votes accepted inside the voting window only.
    before = await store.totals(campaign.id, window=campaign.window_ms)
    after = await store.totals(campaign.id, window=campaign.window_ms, excluding=ids)
    return VoidPreview(
        selection,
        votes,
        freeze(ids),
        places,
        rank_award(campaign, before, places),
        rank_award(campaign, after, places) if ids else rank_award(campaign, before, places),
    )


async def confirm_void(
    client: RedisClient,
    keys: Keys,
    store: Store,
    flusher: Flusher,
    campaign: Campaign,
    selection: VoteSelection,
    frozen: str,
    *,
    reason: str,
    actor: str,
    clock: Clock,
    via: str,
    top: int | None = None,
    context: Mapping[str, object] | None = None,
) -> list[LedgerVote]:
    """Void exactly the votes a preview of ``selection`` froze as ``frozen``.

    Raises SelectionChanged (with a fresh preview) when the selection now names
    other votes, LiveCountersNotUpdated when Redis fails after the ledger was
    updated, ResultCertified (nothing changed) once the result is certified.
    ``via``: where the void was asked (the audit row says it, with ``context``:
    what led to it, e.g. the suspicious-activity signal).
    """
    await flusher.catch_up()
    votes = await store.select_valid(campaign.id, selection)
    if freeze([vote.vote_id for vote in votes]) == frozen:
        voided = await _void_exactly(
            store, campaign.id, selection, votes, reason, actor, clock, via, context
        )
        if voided is not None:
            await _take_off_live_counters(client, keys, voided)
            return voided
        votes = await store.select_valid(campaign.id, selection)  # changed in between
    raise SelectionChanged(await _preview(store, campaign, selection, votes, top))


async def void_votes(
    client: RedisClient,
    keys: Keys,
    store: Store,
    flusher: Flusher,
    campaign: Campaign,
    selection: VoteSelection,
    *,
    reason: str,
    actor: str,
    clock: Clock,
) -> Voided:
    """``votesvc void``: what the selection names now, voided at once.

    Raises LiveCountersNotUpdated if Redis fails after the ledger was updated,
    SelectionChanged if the votes kept changing under it.
    """
    await flusher.catch_up()
    for _ in range(_RETRIES):
        votes = await store.select_valid(campaign.id, selection)
        voided = await _void_exactly(
            store, campaign.id, selection, votes, reason, actor, clock, "command line"
        )
        if voided is not None:
            break
    else:
        raise SelectionChanged(await _preview(store, campaign, selection, votes, None))
    not_found: list[str] = []
    already: list[str] = []
    if selection.vote_ids:
        done = {vote.vote_id for vote in voided}
        rest = [vid for vid in selection.vote_ids if vid not in done]
        known = await store.existing_ids(campaign.id, rest) if rest else set()
        not_found = [vid for vid in rest if vid not in known]
        already = [vid for vid in rest if vid in known]
    await _take_off_live_counters(client, keys, voided)
    return Voided(voided, not_found, already)


async def _void_exactly(
    store: Store,
    campaign: str,
    selection: VoteSelection,
    votes: list[LedgerVote],
    reason: str,
    actor: str,
    clock: Clock,
    via: str,
    context: Mapping[str, object] | None = None,
) -> list[LedgerVote] | None:
    """``votes`` voided with their audit row, all or none (None: one changed meanwhile)."""
    if not votes:
        return []  # no change, no audit row
    ids = [vote.vote_id for vote in votes]
    detail = {
        **(context or {}),
        **selection.criteria(),
        "voided": ids,
        "count": len(ids),
        "by_nominee": dict(Counter(vote.nominee for vote in votes)),
        "via": via,
    }
    audit = AuditEntry(
        at=int(clock() * 1000),
        actor=actor,
        action="void",
        detail=json.dumps(detail, sort_keys=True, ensure_ascii=False),
        reason=reason,
    )
    return await store.void(campaign, ids, reason=reason, audit=audit)


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
    except REDIS_DOWN as exc:  # on a cluster, an unreachable one is no RedisError
        raise LiveCountersNotUpdated(
            f"{len(voided)} votes are void in the ledger but the live counters could not be "
            f"updated ({exc}); run `votesvc restore` once Redis answers",
            voided,
        ) from exc
