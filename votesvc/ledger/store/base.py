"""What every ledger store offers: the rows, the errors and the interface.

The ledger is the durable side of the count: one row per accepted vote, keyed
by the vote id, so writing an entry twice changes nothing. Times are UTC epoch
milliseconds, as the vote path stamps them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from votesvc.entry import UNVERIFIED
from votesvc.errors import VotesvcError
from votesvc.meta import CampaignMeta

__all__ = [
    "ALL_TIME",
    "AuditEntry",
    "LedgerVote",
    "NomineeTotal",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "VoteRow",
    "audit_detail",
]


ALL_TIME = (-(2**63), 2**63 - 1)
"""The widest window of accepted times (epoch ms): every vote."""


class StoreError(VotesvcError):
    """The ledger refused an operation (a bad request, not an outage)."""


class StoreUnavailable(VotesvcError):
    """The database cannot be reached or cannot write now; retry later."""


class VoteRow(NamedTuple):
    """One accepted vote as the flusher writes it (a tuple: stores bind it as is)."""

    vote_id: str
    campaign: str
    nominee: str
    phone_hash: str
    ip_hash: str
    accepted_at: int  # epoch ms
    method: str = UNVERIFIED  # how the voter was verified (votesvc.entry)


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


@dataclass(frozen=True, slots=True)
class NomineeTotal:
    """A nominee's valid votes and when the last of them was accepted (epoch ms)."""

    nominee: str
    votes: int
    reached_at: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: int  # epoch ms
    actor: str
    action: str
    detail: str  # JSON
    reason: str


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
        self, campaign: str, *, window: tuple[int, int] | None = None
    ) -> list[NomineeTotal]:
        """Valid (not void) votes per nominee that has any.

        ``window``: only votes accepted from its start to its end, both included
        (epoch ms, as the vote script judges the voting window).
        """

    async def count(self, campaign: str, *, void: bool | None = None) -> int:
        """Rows of the campaign: all, or only void / only valid ones."""

    async def existing_ids(self, campaign: str, vote_ids: Sequence[str]) -> set[str]:
        """Which of ``vote_ids`` are in the ledger."""

    def votes(self, campaign: str, *, since: int | None = None) -> AsyncIterator[list[LedgerVote]]:
        """Every row (accepted at or after ``since``), by time then id, in chunks."""

    async def void(
        self,
        campaign: str,
        *,
        vote_ids: Sequence[str] = (),
        phone_hash: str | None = None,
        since: int | None = None,
        until: int | None = None,
        reason: str,
        audit: AuditEntry,
    ) -> list[LedgerVote]:
        """Mark matching valid votes void and write ``audit``, in one transaction.

        Returns the rows this call voided (already void ones are left alone).
        When it voids nothing, nothing is written: no audit row for no change.
        """

    async def record_audit(self, campaign: str, audit: AuditEntry) -> None:
        """Append one row to the audit log (an admin action's who, when, what)."""

    async def audit_log(self, campaign: str) -> list[AuditEntry]: ...

    async def campaign_meta(self, campaign: str) -> CampaignMeta | None:
        """The campaign's lifelong settings, or None before its first start."""

    async def save_campaign_meta(self, campaign: str, meta: CampaignMeta) -> None:
        """Write the campaign's settings (created, or its codes grown)."""


def audit_detail(detail: str, voided: Sequence[str]) -> str:
    """An audit row's detail: the request's JSON plus the ids it voided."""
    merged = json.loads(detail) if detail else {}
    merged["voided"] = list(voided)
    merged["count"] = len(voided)
    return json.dumps(merged, sort_keys=True)
