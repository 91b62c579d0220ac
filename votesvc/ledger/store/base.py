"""What every ledger store offers: the rows, the errors and the interface.

The ledger is the durable side of the count: one row per accepted vote, keyed
by the vote id, so writing an entry twice changes nothing. Times are UTC epoch
milliseconds, as the vote path stamps them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from votesvc.entry import UNVERIFIED
from votesvc.errors import VotesvcError
from votesvc.meta import CampaignMeta

__all__ = [
    "ALL_TIME",
    "AuditEntry",
    "Certification",
    "LedgerVote",
    "NomineeTotal",
    "ResultCertified",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "VoteRow",
    "VoteSelection",
]


ALL_TIME = (-(2**63), 2**63 - 1)
"""The widest window of accepted times (epoch ms): every vote."""


class StoreError(VotesvcError):
    """The ledger refused an operation (a bad request, not an outage)."""


class StoreUnavailable(VotesvcError):
    """The database cannot be reached or cannot write now; retry later."""


class ResultCertified(StoreError):
    """The campaign's result is certified: its votes are frozen (no void)."""


class VoteRow(NamedTuple):
    """One accepted vote as the flusher writes it (a tuple: stores bind it as is)."""

    vote_id: str
    campaign: str
    nominee: str
    phone_hash: str
    ip_hash: str
    accepted_at: int  # epoch ms
    method: str = UNVERIFIED  # how the voter was verified (votesvc.entry)
    prefix_hash: str = ""  # the client's network prefix, keyed ("": not known)


@dataclass(frozen=True, slots=True)
class LedgerVote:
    """One ledger row as exports and restores read it."""

    vote_id: str
    nominee: str
    phone_hash: str
    ip_hash: str
    accepted_at: int
    void: bool
    void_reason: str | None
    method: str
    prefix_hash: str = ""


@dataclass(frozen=True, slots=True)
class NomineeTotal:
    """A nominee's valid votes and when the last of them was accepted (epoch ms)."""

    nominee: str
    votes: int
    reached_at: int


@dataclass(frozen=True, slots=True)
class VoteSelection:
    """Which votes a void names: ids, a phone's hash, a nominee or network prefixes
    (their keyed hashes), within a time range.

    Every criterion given must hold; at least one of ``vote_ids``, ``phone_hash``,
    ``nominee`` and ``prefixes`` is required (a time range alone would name every vote).
    """

    vote_ids: tuple[str, ...] = ()
    phone_hash: str | None = None
    nominee: str | None = None
    since: int | None = None  # epoch ms, inclusive
    until: int | None = None  # epoch ms, exclusive
    prefixes: tuple[str, ...] = ()  # votes from any of these network prefixes

    def __post_init__(self) -> None:
        if not (self.vote_ids or self.phone_hash or self.nominee or self.prefixes):
            raise StoreError("a selection names vote ids, a phone, a nominee or prefixes")

    @property
    def start(self) -> int:
        return self.since if self.since is not None else ALL_TIME[0]

    @property
    def end(self) -> int:
        return self.until if self.until is not None else ALL_TIME[1]

    def criteria(self) -> dict[str, object]:
        """The selection as an audit row keeps it (a phone only as its keyed hash)."""
        named: dict[str, object] = {}
        if self.vote_ids:
            named["vote_ids"] = list(self.vote_ids)
        if self.phone_hash is not None:
            named["phone_hash"] = self.phone_hash
        if self.nominee is not None:
            named["nominee"] = self.nominee
        if self.prefixes:
            named["prefixes"] = list(self.prefixes)
        return {**named, "since": self.since, "until": self.until}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: int  # epoch ms
    actor: str
    action: str
    detail: str  # JSON
    reason: str


@dataclass(frozen=True, slots=True)
class Certification:
    """A campaign's certified result: once written, its votes are frozen."""

    certified_at: int  # epoch ms
    actor: str
    votes: int  # ledger rows when certified, void ones included
    void: int  # of which void
    export_sha256: str  # of the export under the default label, as a file
    result: str  # JSON: the published result (votesvc.ledger.certify)


class Store(Protocol):
    """A ledger backend (SQLite or PostgreSQL)."""

    name: str

    async def open(self) -> None:
        """Connect and apply pending migrations; raises StoreUnavailable."""

    async def close(self) -> None: ...

    async def insert_votes(self, rows: Sequence[VoteRow]) -> int:
        """Insert rows not there yet (by vote id); returns how many were new."""

    async def insert_snapshot(self, campaign: str, counts: dict[str, int], taken_at: int) -> None:
        """Record the live tallies at ``taken_at`` (epoch ms)."""

    async def snapshots(self, campaign: str) -> list[tuple[int, dict[str, int]]]:
        """Every tally snapshot, oldest first."""

    async def totals(
        self,
        campaign: str,
        *,
        window: tuple[int, int] | None = None,
        excluding: Sequence[str] = (),
    ) -> list[NomineeTotal]:
        """Valid (not void) votes per nominee that has any.

        ``window``: only votes accepted from its start to its end, both included
        (epoch ms, as the vote script judges the voting window). ``excluding``:
        vote ids counted as if they were void (what a void would leave).
        """

    async def count(
        self, campaign: str, *, void: bool | None = None, window: tuple[int, int] | None = None
    ) -> int:
        """Rows of the campaign: all, or only void / only valid ones (within ``window``)."""

    async def voters(self, campaign: str, *, window: tuple[int, int]) -> int:
        """Distinct phones with a vote accepted within ``window`` (both ends included)."""

    async def existing_ids(self, campaign: str, vote_ids: Sequence[str]) -> set[str]:
        """Which of ``vote_ids`` are in the ledger."""

    def votes(self, campaign: str, *, since: int | None = None) -> AsyncIterator[list[LedgerVote]]:
        """Every row (accepted at or after ``since``), by time then id, in chunks."""

    async def select_valid(self, campaign: str, selection: VoteSelection) -> list[LedgerVote]:
        """The valid votes ``selection`` names, by time then id."""

    async def void(
        self, campaign: str, vote_ids: Sequence[str], *, reason: str, audit: AuditEntry
    ) -> list[LedgerVote] | None:
        """Mark exactly these votes void and write ``audit``, in one transaction.

        All or nothing: if any of them is not a valid vote of the campaign now
        (voided meanwhile, unknown), nothing changes and the answer is None.
        No ids: nothing is written (no audit row for no change) and it answers [].
        Raises ResultCertified, changing nothing, once the result is certified.
        """

    async def certification(self, campaign: str) -> Certification | None:
        """The campaign's certified result, or None while it is not certified."""

    async def certify(
        self, campaign: str, certification: Certification, *, audit: AuditEntry
    ) -> bool:
        """Write ``certification`` and ``audit``, in one transaction, if the ledger
        still holds ``certification.votes`` rows of which ``certification.void``
        are void (False, nothing written: it changed since they were counted).

        Raises ResultCertified when the campaign is certified already. A void
        and a certification never overlap: one waits for the other.
        """

    async def record_audit(self, campaign: str, audit: AuditEntry) -> None:
        """Append one row to the audit log (an admin action's who, when, what)."""

    async def audit_log(
        self,
        campaign: str,
        *,
        action: str | None = None,
        actor: str | None = None,
        since: int | None = None,
        until: int | None = None,
        last: int | None = None,
    ) -> list[AuditEntry]:
        """The campaign's audit rows, oldest first: those of ``action`` and ``actor``
        from ``since`` (included) to ``until`` (excluded), only the ``last`` ones."""

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of one statement; placeholders ``$1``, ``$2``... in both dialects.

        For tables whose SQL is the same in both (votesvc.ledger.store.admin).
        """

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement (placeholders as :meth:`query`); returns the rows it changed."""

    async def campaign_meta(self, campaign: str) -> CampaignMeta | None:
        """The campaign's lifelong settings, or None before its first start."""

    async def save_campaign_meta(self, campaign: str, meta: CampaignMeta) -> None:
        """Write the campaign's settings (created, or its codes grown)."""
