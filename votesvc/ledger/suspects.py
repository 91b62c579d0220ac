# ruff: noqa: RUF001  (Chinese texts use full-width punctuation)
"""Suspicious activity: four signals read from the ledger's valid votes.

Each signal's threshold is in the campaign's ``[suspects]`` table
(:class:`~votesvc.campaign.Suspects`); :func:`signals` defines each in one
sentence, in both languages, with the campaign's numbers:

- ``prefix_votes_per_hour``: one network prefix (IPv4 /24, IPv6 /48, as its
  keyed hash) casting more votes than this in one clock hour of the
  campaign's zone;
- ``nominee_spike``: a nominee's votes in one clock minute above
  ``nominee_spike_factor`` times its median votes per minute over the 60
  minutes before (minutes without votes count as 0), and at least
  ``nominee_spike_min_votes``; flagged minutes in a row make one finding;
- ``top_prefix_share``: a nominee with at least ``top_prefix_min_votes``
  votes, more than ``top_prefix_share`` of them from its 10 busiest prefixes;
- ``same_sequence``: at least ``same_sequence_phones`` phones each voting, in
  the same order, for the same list of at least three nominees, every phone's
  list cast within ``same_sequence_minutes`` and all of them starting within
  that many minutes of the first.

Every :class:`Finding` carries the :class:`VoteSelection` that names exactly
its votes, so a void preview of the finding shows those votes and no other.
Void votes do not count (a finding voided away is gone), nor do votes from
before prefixes were kept (migration 5) for the prefix signals. The ledger is
read once, in time order; the work is a few dictionary updates per vote.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from votesvc.campaign import Campaign, Suspects
from votesvc.ledger.export import Refs
from votesvc.ledger.store import LedgerVote, Store, VoteSelection
from votesvc.ledger.times import local_iso
from votesvc.ledger.void import IDS_MAX

__all__ = [
    "FORMATS",
    "SIGNALS",
    "TITLES_ZH",
    "Finding",
    "Signal",
    "find_suspects",
    "render",
    "signals",
]

FORMATS = ("table", "csv", "json")
SIGNALS = ("prefix_votes_per_hour", "nominee_spike", "top_prefix_share", "same_sequence")
TITLES_ZH = {  # each signal's name on the console's pages
    "prefix_votes_per_hour": "同一网段集中投票",
    "nominee_spike": "候选人票数突增",
    "top_prefix_share": "票源过于集中",
    "same_sequence": "多个号码投票顺序相同",
}
TOP_PREFIXES = 10  # a nominee's busiest prefixes, for top_prefix_share
SEQUENCE_MIN = 3  # nominees in a list, for same_sequence
_MINUTE = 60_000
_BASELINE_MINUTES = 60


@dataclass(frozen=True, slots=True)
class Signal:
    name: str
    en: str  # the definition, one sentence, with the campaign's numbers
    zh: str


def signals(settings: Suspects) -> list[Signal]:
    """The four signals, each defined in one sentence with these thresholds."""
    s = settings
    factor = f"{s.nominee_spike_factor:g}"
    share = f"{s.top_prefix_share:.0%}"
    return [
        Signal(
            "prefix_votes_per_hour",
            f"A network prefix (IPv4 /24, IPv6 /48) casting more than "
            f"{s.prefix_votes_per_hour} votes in one clock hour.",
            f"同一网段（IPv4 /24 或 IPv6 /48，通常是同一个单位或小区的网络）在一个整点小时内"
            f"投了超过 {s.prefix_votes_per_hour:,} 票。",
        ),
        Signal(
            "nominee_spike",
            f"A nominee's votes in one minute above {factor} times the median of its "
            f"votes per minute over the hour before, and at least "
            f"{s.nominee_spike_min_votes}.",
            f"某位候选人一分钟内的得票，超过他前一小时每分钟得票中位数的 {factor} 倍，"
            f"并且至少 {s.nominee_spike_min_votes:,} 票（连续几分钟算一条）。",
        ),
        Signal(
            "top_prefix_share",
            f"A nominee with at least {s.top_prefix_min_votes} votes, more than {share} "
            f"of them from its {TOP_PREFIXES} busiest network prefixes.",
            f"某位候选人得票至少 {s.top_prefix_min_votes:,} 张，其中超过 {share} 来自"
            f"给他投票最多的 {TOP_PREFIXES} 个网段。",
        ),
        Signal(
            "same_sequence",
            f"At least {s.same_sequence_phones} phones voting, in the same order, for the "
            f"same list of at least {SEQUENCE_MIN} nominees within "
            f"{s.same_sequence_minutes} minutes.",
            f"至少 {s.same_sequence_phones:,} 个手机号在 {s.same_sequence_minutes} 分钟内，"
            f"按同样的先后顺序投给了同一组候选人（至少 {SEQUENCE_MIN} 位）。",
        ),
    ]


@dataclass(frozen=True, slots=True)
class Finding:
    """One suspicious group of votes, and the selection that names exactly them."""

    signal: str
    nominee: str | None
    prefix_hash: str | None  # the stored (keyed) hash of the prefix, when one is named
    votes: int
    first: int  # epoch ms: the first of those votes
    last: int  # and the last
    selection: VoteSelection
    window: tuple[int, int] | None = None  # the clock hour or minutes, [start, end)
    baseline: float | None = None  # nominee_spike: the median votes per minute before
    total: int | None = None  # top_prefix_share: the nominee's valid votes
    phones: int | None = None  # same_sequence: how many phones
    sequence: tuple[str, ...] = ()  # same_sequence: the nominees, in order
    prefixes: int | None = None  # top_prefix_share: prefixes counted (at most 10)

    def as_json(self, campaign: Campaign, refs: Refs) -> dict[str, Any]:
        """``{"signal", "nominee", "prefix_ref", "votes", "from", "to"}``: ``prefix_ref``
        as the export under the same label holds it."""
        tz = campaign.timezone
        return {
            "signal": self.signal,
            "nominee": self.nominee,
            "prefix_ref": None if self.prefix_hash is None else refs(self.prefix_hash),
            "votes": self.votes,
            "from": local_iso(self.first, tz),
            "to": local_iso(self.last, tz),
        }


@dataclass(slots=True)
class _Span:
    """Votes counted for one key: how many, the first and the last time."""

    votes: int = 0
    first: int = 0
    last: int = 0

    def add(self, at: int) -> None:
        if not self.votes:
            self.first = at
        self.votes += 1
        self.last = at


@dataclass(slots=True)
class _Burst:
    """One phone's votes within ``same_sequence_minutes`` of the first of them."""

    phone: str
    start: int
    nominees: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    last: int = 0


class _Reader:
    """Everything the signals need, gathered in one pass over the votes in time order."""

    def __init__(self, campaign: Campaign) -> None:
        self.tz = campaign.timezone
        self.burst_ms = campaign.suspects.same_sequence_minutes * _MINUTE
        self.hours: dict[tuple[str, int], _Span] = {}  # (prefix, hour start) -> votes
        self.minutes: dict[str, dict[int, _Span]] = {}  # nominee -> minute start -> votes
        self.nominee_prefixes: dict[str, dict[str, _Span]] = {}  # nominee -> prefix -> votes
        self.nominee_votes: dict[str, int] = {}
        self.open_bursts: dict[str, _Burst] = {}  # phone -> its burst still open
        self.bursts: dict[tuple[str, ...], list[_Burst]] = {}  # nominees -> closed bursts
        self._hour = (0, -1)  # [start, end) of the clock hour last seen, epoch ms

    def hour_of(self, at: int) -> int:
        start, end = self._hour
        if not start <= at < end:
            local = datetime.fromtimestamp(at / 1000, self.tz)
            start = int(local.replace(minute=0, second=0, microsecond=0).timestamp() * 1000)
            self._hour = (start, start + 60 * _MINUTE)
        return self._hour[0]

    def add(self, vote: LedgerVote) -> None:
        at, nominee, prefix = vote.accepted_at, vote.nominee, vote.prefix_hash
        if prefix:
            key = (prefix, self.hour_of(at))
            span = self.hours.get(key)
            if span is None:
                span = self.hours[key] = _Span()
            span.add(at)
            by_prefix = self.nominee_prefixes.setdefault(nominee, {})
            span = by_prefix.get(prefix)
            if span is None:
                span = by_prefix[prefix] = _Span()
            span.add(at)
        self.nominee_votes[nominee] = self.nominee_votes.get(nominee, 0) + 1
        minutes = self.minutes.setdefault(nominee, {})
        minute = at - at % _MINUTE
        span = minutes.get(minute)
        if span is None:
            span = minutes[minute] = _Span()
        span.add(at)
        burst = self.open_bursts.get(vote.phone_hash)
        if burst is None or at - burst.start > self.burst_ms:
            if burst is not None:
                self.close(burst)
            burst = self.open_bursts[vote.phone_hash] = _Burst(vote.phone_hash, at)
        burst.nominees.append(nominee)
        burst.ids.append(vote.vote_id)
        burst.last = at

    def close(self, burst: _Burst) -> None:
        if len(burst.nominees) >= SEQUENCE_MIN:
            self.bursts.setdefault(tuple(burst.nominees), []).append(burst)

    def finish(self) -> None:
        for burst in self.open_bursts.values():
            self.close(burst)
        self.open_bursts = {}


async def find_suspects(store: Store, campaign: Campaign) -> list[Finding]:
    """Every finding of the four signals, by the time of its first vote."""
    reader = _Reader(campaign)
    async for chunk in store.votes(campaign.id):
        for vote in chunk:
            if not vote.void:
                reader.add(vote)
    reader.finish()
    s = campaign.suspects
    findings = [
        *_prefix_hours(reader, s),
        *_spikes(reader, s),
        *_top_prefixes(reader, s),
        *_sequences(reader, s),
    ]
    order = {name: index for index, name in enumerate(SIGNALS)}
    return sorted(findings, key=lambda f: (f.first, order[f.signal], f.nominee or ""))


def _prefix_hours(reader: _Reader, s: Suspects) -> Iterable[Finding]:
    for (prefix, hour), span in reader.hours.items():
        if span.votes > s.prefix_votes_per_hour:
            yield Finding(
                "prefix_votes_per_hour",
                None,
                prefix,
                span.votes,
                span.first,
                span.last,
                VoteSelection(prefixes=(prefix,), since=span.first, until=span.last + 1),
                window=(hour, hour + 60 * _MINUTE),
            )


def _spikes(reader: _Reader, s: Suspects) -> Iterable[Finding]:
    for nominee, minutes in reader.minutes.items():
        flagged: list[tuple[int, _Span, float]] = []
        for minute in sorted(minutes):
            span = minutes[minute]
            if span.votes < s.nominee_spike_min_votes:
                continue
            before = [
                minutes[m].votes if m in minutes else 0
                for m in range(minute - _BASELINE_MINUTES * _MINUTE, minute, _MINUTE)
            ]
            median = statistics.median(before)
            if span.votes > s.nominee_spike_factor * median:
                flagged.append((minute, span, median))
        run: list[tuple[int, _Span, float]] = []
        for item in flagged:
            if run and item[0] != run[-1][0] + _MINUTE:
                yield _spike(nominee, run)
                run = []
            run.append(item)
        if run:
            yield _spike(nominee, run)


def _spike(nominee: str, run: list[tuple[int, _Span, float]]) -> Finding:
    """Flagged minutes in a row, as one finding (the highest median of them)."""
    first, last = run[0][1].first, run[-1][1].last
    return Finding(
        "nominee_spike",
        nominee,
        None,
        sum(span.votes for _, span, _ in run),
        first,
        last,
        VoteSelection(nominee=nominee, since=first, until=last + 1),
        window=(run[0][0], run[-1][0] + _MINUTE),
        baseline=max(median for _, _, median in run),
    )


def _top_prefixes(reader: _Reader, s: Suspects) -> Iterable[Finding]:
    for nominee, by_prefix in reader.nominee_prefixes.items():
        total = reader.nominee_votes[nominee]
        if total < s.top_prefix_min_votes:
            continue
        # The busiest first; equal counts by hash, so the same ledger names the same ten.
        top = sorted(by_prefix.items(), key=lambda item: (-item[1].votes, item[0]))
        top = top[:TOP_PREFIXES]
        votes = sum(span.votes for _, span in top)
        if votes <= s.top_prefix_share * total:
            continue
        first = min(span.first for _, span in top)
        last = max(span.last for _, span in top)
        prefixes = tuple(prefix for prefix, _ in top)
        yield Finding(
            "top_prefix_share",
            nominee,
            None,
            votes,
            first,
            last,
            VoteSelection(nominee=nominee, prefixes=prefixes, since=first, until=last + 1),
            total=total,
            prefixes=len(prefixes),
        )


def _sequences(reader: _Reader, s: Suspects) -> Iterable[Finding]:
    window = s.same_sequence_minutes * _MINUTE
    for nominees, bursts in reader.bursts.items():
        if len(bursts) < s.same_sequence_phones:
            continue
        bursts.sort(key=lambda b: (b.start, b.phone))
        i = 0
        while i < len(bursts):
            # the bursts starting within the window of bursts[i], as many as one void lists
            j, votes = i, 0
            while (
                j < len(bursts)
                and bursts[j].start - bursts[i].start <= window
                and votes + len(bursts[j].ids) <= IDS_MAX
            ):
                votes += len(bursts[j].ids)
                j += 1
            group = bursts[i:j]
            phones = len({b.phone for b in group})
            if phones < s.same_sequence_phones:
                i += 1
                continue
            ids = tuple(vote_id for b in group for vote_id in b.ids)
            first = group[0].start
            last = max(b.last for b in group)
            yield Finding(
                "same_sequence",
                None,
                None,
                len(ids),
                first,
                last,
                VoteSelection(vote_ids=ids),
                phones=phones,
                sequence=nominees,
            )
            i = j


def render(findings: list[Finding], campaign: Campaign, refs: Refs, fmt: str) -> str:
    """The findings as ``table`` (for people: the definitions, then one line each),
    ``csv`` or ``json`` (a list of :meth:`Finding.as_json`)."""
    rows = [finding.as_json(campaign, refs) for finding in findings]
    if fmt == "json":
        return orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n"
    columns = ("signal", "nominee", "prefix_ref", "votes", "from", "to")
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
        return out.getvalue()
    lines = [f"{campaign.title} ({campaign.id}): suspicious activity, from the ledger"]
    lines += [f"  {signal.name}: {signal.en}" for signal in signals(campaign.suspects)]
    lines.append(
        f"times in {campaign.timezone.key}; prefix_ref as the export's (label {refs.label})"
    )
    lines.append("")
    if not rows:
        lines.append("no findings")
        return "\n".join(lines) + "\n"
    lines.append(f"{'signal':<22} {'nominee':<8} {'prefix_ref':<14} {'votes':>7}  {'from':<29} to")
    for row in rows:
        ref = row["prefix_ref"]
        lines.append(
            f"{row['signal']:<22} {row['nominee'] or '-':<8} "
            f"{(ref[:12] + '..') if ref else '-':<14} {row['votes']:>7}  {row['from']:<29} "
            f"{row['to']}"
        )
    lines.append(f"{len(rows)} finding{'' if len(rows) == 1 else 's'}")
    return "\n".join(lines) + "\n"
