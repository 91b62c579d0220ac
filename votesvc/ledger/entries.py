"""Vote stream entries in the flusher's hands: the rows they hold, their ids by shard.

Entries come as redis-py returns them from XREADGROUP and XAUTOCLAIM:
``(id, fields)`` pairs. A malformed entry is logged and skipped, but its id is
kept so that it is acknowledged like the rest instead of being read again
forever.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from votesvc.entry import VoteEntry
from votesvc.ledger.store import VoteRow

__all__ = ["Entries", "StreamId", "format_stream_id", "parse_stream_id", "text"]

StreamId = tuple[int, int]
"""A stream entry id ``ms-seq`` as numbers, ordered as Redis orders the entries."""

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Entries:
    """Stream entries in hand: the votes they hold, and their ids by shard."""

    campaign: str
    rows: list[VoteRow] = field(default_factory=list)
    ids: dict[int, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.ids.values())

    def extend(self, other: Entries) -> None:
        self.rows += other.rows
        for shard, ids in other.ids.items():
            self.ids.setdefault(shard, []).extend(ids)

    def add_entry(self, shard: int, entry: Any) -> None:
        """Add one ``(id, fields)`` entry as redis-py returns it."""
        entry_id, fields = entry
        try:
            vote = VoteEntry.from_fields(fields)
        except (KeyError, ValueError):  # UnicodeDecodeError is a ValueError
            log.error("skipping a malformed stream entry %r: %r", entry_id, fields)
        else:
            self.rows.append(
                VoteRow(
                    vote.vote_id,
                    self.campaign,
                    vote.nominee,
                    vote.phone_hash,
                    vote.ip_hash,
                    vote.accepted_at,
                    vote.method,
                    vote.prefix_hash,
                )
            )
        self.ids.setdefault(shard, []).append(text(entry_id))


def text(value: bytes | str) -> str:
    """A reply value as text (redis-py answers bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def parse_stream_id(value: bytes | str) -> StreamId:
    ms, _, seq = text(value).partition("-")
    return int(ms), int(seq or 0)


def format_stream_id(value: StreamId) -> str:
    return f"{value[0]}-{value[1]}"
