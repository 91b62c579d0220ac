# ruff: noqa: RUF001  (Chinese texts use full-width punctuation)
"""The "most popular" award: a ranking computed from the durable ledger only.

Void votes do not count. The result is final only once the voting window has
closed and no vote is pending in Redis; before that it is refused, or given
marked provisional on request. Tie rule: equal votes are ordered by who
reached that total first (the accepted time of the vote that brought the
nominee to it), then by nominee id; so every place is distinct and the cut
line is never ambiguous. Equal votes still share a rank for the reader
(并列第N): the rule orders them, and says who is above the cut line.

:func:`render` gives the command line's English (times in the campaign's zone,
with the offset); :func:`in_chinese` gives the console's Chinese texts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from votesvc.campaign import Campaign, Nominee
from votesvc.ledger.store import NomineeTotal
from votesvc.ledger.times import local_iso, zh_time

__all__ = [
    "FORMATS",
    "TIE_RULE",
    "TIE_RULE_ZH",
    "Award",
    "AwardZh",
    "Caveat",
    "Placing",
    "award_blockers",
    "award_caveats",
    "in_chinese",
    "rank_award",
    "render",
    "shared_ranks",
]

TIE_RULE = (
    "Tie rule: nominees with equal votes are ordered by who reached that total first "
    "(the accepted time of the vote that brought them to it), then by nominee id."
)
TIE_RULE_ZH = (
    "并列规则：票数相同的候选人，谁先得到这个票数谁排在前面（看让他达到这个票数的那一票是"
    "什么时候投的）；如果时间也相同，按候选人编号先后排列。"
)
FORMATS = ("table", "csv", "json")


@dataclass(frozen=True, slots=True)
class Caveat:
    """Why a result is not final yet, in both languages."""

    en: str
    zh: str


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
    caveats: list[Caveat]  # why it is provisional
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


def award_caveats(campaign: Campaign, now: float, pending: int) -> list[Caveat]:
    """Why a final award cannot be given now (empty: it can)."""
    tz = campaign.timezone
    opens, closes = campaign.window_ms
    caveats = []
    if now < campaign.opens_at.timestamp():
        caveats.append(
            Caveat(
                f"voting has not opened yet (it opens {_local(campaign.opens_at, tz)})",
                f"投票还没有开始（{zh_time(opens, tz)}开始）",
            )
        )
    elif now < campaign.closes_at.timestamp():
        caveats.append(
            Caveat(
                f"the voting window is still open (it closes {_local(campaign.closes_at, tz)})",
                f"投票还在进行（{zh_time(closes, tz)}截止）",
            )
        )
    if pending:
        caveats.append(
            Caveat(
                f"{pending} accepted votes are still pending in Redis (not in the ledger)",
                f"还有 {pending:,} 张已收到的选票正在写入账本",
            )
        )
    return caveats


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).isoformat(sep=" ", timespec="seconds")


def award_blockers(campaign: Campaign, now: float, pending: int) -> list[str]:
    """Why a final award cannot be given now, in English (empty: it can)."""
    return [caveat.en for caveat in award_caveats(campaign, now, pending)]


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


def _status(award: Award) -> str:
    if award.provisional:
        return "PROVISIONAL, not the final result: " + "; ".join(c.en for c in award.caveats)
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
    tz = campaign.timezone
    lines = [
        f"{campaign.title} ({campaign.id}): most popular award, top {award.top}",
        _status(award),
        f"computed from the ledger at {local_iso(int(award.computed_at * 1000), tz)}: "
        f"{award.total} valid votes, {award.void_votes} void votes excluded",
        f"times in {tz.key}",
        "",
        f"{'place':>5}  {'id':<6} {'votes':>8}  {'reached total at':<29} name / trade",
    ]
    for placing in award.placings:
        nominee = placing.nominee
        lines.append(
            f"{placing.place:>5}  {nominee.id:<6} {placing.votes:>8}  "
            f"{local_iso(placing.reached_at, tz):<29} {nominee.name} / {nominee.trade}"
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
    tz = award.campaign.timezone
    for p in award.placings:
        n = p.nominee
        awarded = "yes" if p.awarded else "no"
        reached = local_iso(p.reached_at, tz)
        writer.writerow([p.place, n.id, n.name, n.trade, n.employer, p.votes, reached, awarded])
    return out.getvalue()


def _render_json(award: Award) -> str:
    tz = award.campaign.timezone
    document = {
        "campaign": award.campaign.id,
        "title": award.campaign.title,
        "final": not award.provisional,
        "provisional": award.provisional,
        "status": _status(award),
        "caveats": [caveat.en for caveat in award.caveats],
        "computed_at": local_iso(int(award.computed_at * 1000), tz),
        "timezone": tz.key,
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
                "reached_at": local_iso(p.reached_at, tz) or None,
                "awarded": p.awarded,
            }
            for p in award.placings
        ],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def shared_ranks(votes: Sequence[int]) -> list[int]:
    """Ranks for the reader of a list sorted by votes, most first: equal votes share
    the first of their places (1, 2, 2, 4)."""
    ranks: list[int] = []
    for index, count in enumerate(votes):
        same = index > 0 and votes[index - 1] == count
        ranks.append(ranks[-1] if same else index + 1)
    return ranks


@dataclass(frozen=True, slots=True)
class AwardZh:
    """The award's texts for the console, in Chinese."""

    status: str  # final, or provisional and why
    ranks: list[str]  # per placing: 第1名, 并列第4名
    cut_after: int | None  # the line goes after this many placings (None: everyone is awarded)
    cut_line: str
    cut_tie: str | None  # a tie across the line, and what the rule decided
    tie_rule: str
    summary: str  # where the figures come from, when


def in_chinese(award: Award) -> AwardZh:
    """The award as the console shows it (see the module's docstring)."""
    placings = award.placings
    ranks = shared_ranks([p.votes for p in placings])
    shared = {rank for index, rank in enumerate(ranks) if ranks.count(rank) > 1}
    labels = [f"并列第{rank}名" if rank in shared else f"第{rank}名" for rank in ranks]
    tz = award.campaign.timezone
    if award.provisional:
        status = "暂定结果，还不是最终结果：" + "；".join(c.zh for c in award.caveats) + "。"
    else:
        status = "最终结果：投票已经截止，收到的选票都已写入账本。"
    cut_after = award.top if award.top < len(placings) else None
    cut_line = f"获奖线：以上 {min(award.top, len(placings))} 位获“最受欢迎”奖"
    summary = (
        f"按账本计算于 {zh_time(int(award.computed_at * 1000), tz)}：有效票 {award.total:,} 张，"
        f"已作废的 {award.void_votes:,} 张不计入。"
    )
    return AwardZh(status, labels, cut_after, cut_line, _cut_tie_zh(award), TIE_RULE_ZH, summary)


def _cut_tie_zh(award: Award) -> str | None:
    """Who ties across the cut line and which of them the rule puts above it."""
    top, placings = award.top, award.placings
    if not 0 < top < len(placings) or placings[top - 1].votes != placings[top].votes:
        return None
    votes = placings[top].votes
    tied = [p for p in placings if p.votes == votes]
    above = [p.nominee.name for p in tied if p.awarded]
    below = [p.nominee.name for p in tied if not p.awarded]
    return (
        f"第 {tied[0].place} 至第 {tied[-1].place} 名的 {len(tied)} 位候选人都是 {votes:,} 票，"
        f"并列在获奖线上，但只剩 {len(above)} 个获奖名额。按并列规则（先得到 {votes:,} 票的排在"
        f"前面），{'、'.join(above)} 获奖，{'、'.join(below)} 未获奖。"
    )
