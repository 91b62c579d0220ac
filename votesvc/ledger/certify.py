# ruff: noqa: RUF001  (Chinese texts use full-width punctuation)
"""Certifying the result: the award from the ledger, published and frozen.

Once voting has closed and no accepted vote waits in Redis, an operator (the
console's 认证结果, or ``votesvc certify --by NAME``) certifies: the award is
computed from the ledger as ``votesvc award`` computes it, and one
transaction writes the certified result (what ``GET /v1/results`` and the
``/results`` page publish) and an audit row holding the award table, the
ledger's vote count and the SHA-256 of the export under the default label
(the campaign id), which a later ``votesvc export`` reproduces byte for byte.
From then on a void is refused (:class:`~votesvc.ledger.store.ResultCertified`):
the published result, the export's digest and the ledger agree for good.

The ledger is walked once for the digest; the award's totals are read after
it and the counts checked again, and the store writes the certification only
if the ledger still holds those counts (votes are only added and voided,
never removed or restored, so equal counts mean nothing changed). A void
that lands meanwhile makes it start over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from votesvc.campaign import Campaign
from votesvc.connection import RedisClient
from votesvc.days import Clock
from votesvc.errors import VotesvcError
from votesvc.keys import Keys
from votesvc.ledger.award import TIE_RULE, Caveat, Placing, award_caveats, rank_award
from votesvc.ledger.export import Digest, Refs, export_digest
from votesvc.ledger.reconcile import pending_votes
from votesvc.ledger.store import AuditEntry, Certification, ResultCertified, Store
from votesvc.ledger.times import local_iso

__all__ = [
    "Certified",
    "CertifyRefused",
    "certify",
    "result_document",
    "tie_places",
    "uncertified_document",
]

_ATTEMPTS = 3  # the ledger changed under a certification (a void): compute it again


class CertifyRefused(VotesvcError):
    """Not now: why, in both languages (``caveats``), or certified already (``existing``)."""

    def __init__(
        self, message: str, caveats: list[Caveat], existing: Certification | None = None
    ) -> None:
        super().__init__(message)
        self.caveats = caveats
        self.existing = existing


@dataclass(frozen=True, slots=True)
class Certified:
    certification: Certification
    placings: list[Placing]  # every nominee, in award order
    seats: int
    export: Digest  # rows, void rows and the digest of the default-label export
    label: str


def tie_places(placings: list[Placing]) -> list[int]:
    """The place of each placing (award order) as published: 1 + the nominees the tie
    rule puts ahead by votes or by the time they reached them; nominees it did not
    separate (equal votes reached at the same instant, or none) share a place, the
    nominee id that orders them being no merit."""
    places: list[int] = []
    for index, placing in enumerate(placings):
        before = placings[index - 1] if index else None
        same = (
            before is not None
            and before.votes == placing.votes
            and before.reached_at == placing.reached_at
        )
        places.append(places[-1] if same else index + 1)
    return places


def result_document(
    campaign: Campaign, placings: list[Placing], seats: int, certified_at: int
) -> dict[str, Any]:
    """The certified result as ``GET /v1/results`` answers it."""
    places = tie_places(placings)
    return {
        "campaign": campaign.id,
        "certified": True,
        "certified_at": local_iso(certified_at, campaign.timezone),
        "seats": seats,
        "winners": [
            {
                "place": place,
                "id": placing.nominee.id,
                "name": placing.nominee.name,
                "trade": placing.nominee.trade,
                "votes": placing.votes,
            }
            for placing, place in zip(placings, places, strict=True)
            if placing.awarded
        ],
        "tie_rule": TIE_RULE,
    }


def uncertified_document(campaign: Campaign) -> dict[str, Any]:
    """``GET /v1/results`` before the result is certified."""
    return {"campaign": campaign.id, "certified": False}


async def certify(
    client: RedisClient,
    keys: Keys,
    store: Store,
    campaign: Campaign,
    secret: bytes,
    *,
    actor: str,
    clock: Clock,
    via: str,
) -> Certified:
    """Certify the campaign's result now; raises CertifyRefused (not closed, votes
    pending, certified already), StoreUnavailable, RedisError."""
    existing = await store.certification(campaign.id)
    if existing is not None:
        raise CertifyRefused("the result is certified already", [], existing)
    pending = len(await pending_votes(client, keys, store))
    caveats = award_caveats(campaign, clock(), pending)
    if caveats:
        raise CertifyRefused("; ".join(caveat.en for caveat in caveats), caveats)
    label = campaign.id
    refs = Refs(secret, label)
    seats = campaign.rules.award_seats
    for _ in range(_ATTEMPTS):
        export = await export_digest(store, campaign, refs)
        totals = await store.totals(campaign.id, window=campaign.window_ms)
        counted = (await store.count(campaign.id), await store.count(campaign.id, void=True))
        if counted != (export.rows, export.void):
            continue  # a void between the walk and the totals
        placings = rank_award(campaign, totals, seats)
        now_ms = int(clock() * 1000)
        document = result_document(campaign, placings, seats, now_ms)
        certification = Certification(
            certified_at=now_ms,
            actor=actor,
            votes=export.rows,
            void=export.void,
            export_sha256=export.sha256,
            result=json.dumps(document, ensure_ascii=False, sort_keys=True),
        )
        audit = AuditEntry(
            at=now_ms,
            actor=actor,
            action="certify",
            detail=json.dumps(
                _audit_detail(placings, seats, export, label, via), ensure_ascii=False
            ),
            reason="",
        )
        try:
            written = await store.certify(campaign.id, certification, audit=audit)
        except ResultCertified:  # another organiser was quicker
            existing = await store.certification(campaign.id)
            raise CertifyRefused("the result is certified already", [], existing) from None
        if written:
            return Certified(certification, placings, seats, export, label)
    raise CertifyRefused(
        "the ledger kept changing (votes being voided): try again",
        [Caveat("votes are being voided: try again", "正在有人作废选票，请稍后再认证")],
    )


def _audit_detail(
    placings: list[Placing], seats: int, export: Digest, label: str, via: str
) -> dict[str, Any]:
    """The audit row of a certification: the award table, the counts, the digest."""
    places = tie_places(placings)
    return {
        "via": via,
        "votes": export.rows,
        "void": export.void,
        "valid_in_window": sum(p.votes for p in placings),
        "sha256": export.sha256,
        "label": label,
        "seats": seats,
        "award": [
            {
                "order": p.place,
                "place": place,
                "id": p.nominee.id,
                "name": p.nominee.name,
                "votes": p.votes,
                "awarded": p.awarded,
            }
            for p, place in zip(placings, places, strict=True)
        ],
    }
