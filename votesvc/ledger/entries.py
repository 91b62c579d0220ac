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

from votesvc.ledger.store import VoteRow

__all__ = ["Entries"]

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
            self.rows.append(
                VoteRow(
                    fields[b"id"].decode(),
                    self.campaign,
                    fields[b"n"].decode(),
                    fields[b"p"].decode(),
                    fields[b"ip"].decode(),
                    int(fields[b"ts"]),
                )
            )
        except (KeyError, ValueError, UnicodeDecodeError):
            log.error("skipping a malformed stream entry %r: %r", entry_id, fields)
        self.ids.setdefault(shard, []).append(
            entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        )
