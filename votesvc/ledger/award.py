"""The "most popular" award: a ranking computed from the durable ledger only.

Void votes do not count. The result is final only once the voting window has
closed and no vote is pending in Redis; before that it is refused, or given
marked provisional on request. Tie rule: equal votes are ordered by who
reached that total first (the accepted time of the vote that brought the
nominee to it), then by nominee id; so every place is distinct and the cut
line is never ambiguous.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from votesvc.campaign import Campaign, Nominee
from votesvc.ledger.store import NomineeTotal

__all__ = [
    "FORMATS",
    "TIE_RULE",
    "Award",
    "Placing",
    "award_blockers",
    "rank_award",
    "render",
]

TIE_RULE = (
    "Tie rule: nominees with equal votes are ordered by who reached that total first "
    "(the accepted time of the vote that brought them to it), then by nominee id."
)
FORMATS = ("table", "csv", "json")


@dataclass(frozen=True, slots=True)
class Placing:
    place: int
    nominee: Nominee
    votes: int
    reached_at: int | None  # epoch ms of the vote that made the total; None with no votes
    awarded: bool


@dataclass(frozen=True, slots=True)
class Award:
    campaign: Campaign
    placings: list[Placing]
    top: int
    provisional: bool
    caveats: list[str]  # why it is provisional
    void_votes: int
    computed_at: float

    @property
    def total(self) -> int:
        return sum(p.votes for p in self.placings)

    def cut_tie(self) -> str | None:
        """A note when the tie rule decided who is just above the cut line."""
        if 0 < self.top < len(self.placings):
            last, first_out = self.placings[self.top - 1], self.placings[self.top]
            if last.votes == first_out.votes:
                return (
                    f"{last.nominee.id} and {first_out.nominee.id} both have {last.votes} votes: "
                    f"the tie rule puts {last.nominee.id} above the cut line."
                )
        return None


def award_blockers(campaign: Campaign, now: float, pending: int) -> list[str]:
    """Why a final award cannot be given now (empty: it can)."""
    blockers = []
    if now < campaign.opens_at.timestamp():
        blockers.append(f"voting has not opened yet (it opens {campaign.opens_at})")
    elif now < campaign.closes_at.timestamp():
        blockers.append(f"the voting window is still open (it closes {campaign.closes_at})")
    if pending:
        blockers.append(f"{pending} accepted votes are still pending in Redis (not in the ledger)")
    return blockers


def rank_award(campaign: Campaign, totals: list[NomineeTotal], top: int) -> list[Placing]:
    """Every nominee in award order (see TIE_RULE); the first ``top`` are awarded."""
    by_id = {total.nominee: total for total in totals}
    never = 2**63  # no votes: after every nominee with a time, then by id

    def order(nominee: Nominee) -> tuple[int, int, str]:
        total = by_id.get(nominee.id)
        if total is None:
            return (0, never, nominee.id)
        return (-total.votes, total.reached_at, nominee.id)

    placings = []
    for place, nominee in enumerate(sorted(campaign.nominees, key=order), start=1):
        total = by_id.get(nominee.id)
        placings.append(
            Placing(
                place,
                nominee,
                total.votes if total else 0,
                total.reached_at if total else None,
                place <= top,
            )
        )
    return placings


def _iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _status(award: Award) -> str:
    if award.provisional:
        return "PROVISIONAL, not the final result: " + "; ".join(award.caveats)
    return "FINAL: the voting window has closed and every accepted vote is in the ledger"


def render(award: Award, fmt: str) -> str:
    """The award as ``table`` (for people), ``csv`` or ``json``."""
    if fmt == "json":
        return _render_json(award)
    if fmt == "csv":
        return _render_csv(award)
    return _render_table(award)


def _render_table(award: Award) -> str:
    campaign = award.campaign
    lines = [
        f"{campaign.title} ({campaign.id}): most popular award, top {award.top}",
        _status(award),
        f"computed from the ledger at {_iso(int(award.computed_at * 1000))}: "
        f"{award.total} valid votes, {award.void_votes} void votes excluded",
        "",
        f"{'place':>5}  {'id':<6} {'votes':>8}  {'reached total at (UTC)':<29} name / trade",
    ]
    for placing in award.placings:
        nominee = placing.nominee
        lines.append(
            f"{placing.place:>5}  {nominee.id:<6} {placing.votes:>8}  "
            f"{_iso(placing.reached_at):<29} {nominee.name} / {nominee.trade}"
        )
        if placing.place == award.top and award.top < len(award.placings):
            lines.append(f"{'':->5}  cut line: places 1-{award.top} receive the award {'':->30}")
    lines += ["", TIE_RULE]
    note = award.cut_tie()
    if note:
        lines.append(note)
    return "\n".join(lines) + "\n"


def _render_csv(award: Award) -> str:
    out = io.StringIO()
    out.write(f"# {_status(award)}\n# {TIE_RULE}\n")
    note = award.cut_tie()
    if note:
        out.write(f"# {note}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["place", "nominee", "name", "trade", "employer", "votes", "reached_at", "awarded"]
    )
    for p in award.placings:
        n = p.nominee
        awarded = "yes" if p.awarded else "no"
        writer.writerow(
            [p.place, n.id, n.name, n.trade, n.employer, p.votes, _iso(p.reached_at), awarded]
        )
    return out.getvalue()


def _render_json(award: Award) -> str:
    document = {
        "campaign": award.campaign.id,
        "title": award.campaign.title,
        "final": not award.provisional,
        "provisional": award.provisional,
        "status": _status(award),
        "caveats": award.caveats,
        "computed_at": _iso(int(award.computed_at * 1000)),
        "top": award.top,
        "cut_line_after_place": min(award.top, len(award.placings)),
        "tie_rule": TIE_RULE,
        "cut_line_tie": award.cut_tie(),
        "total_votes": award.total,
        "void_votes": award.void_votes,
        "nominees": [
            {
                "place": p.place,
                "id": p.nominee.id,
                "name": p.nominee.name,
                "trade": p.nominee.trade,
                "employer": p.nominee.employer,
                "votes": p.votes,
                "reached_at": _iso(p.reached_at) or None,
                "awarded": p.awarded,
            }
            for p in award.placings
        ],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
