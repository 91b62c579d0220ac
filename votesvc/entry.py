"""The vote stream entry: how an accepted vote is written into Redis, in one place.

``cast_vote.lua`` appends one entry per accepted vote to its shard's stream,
with exactly these fields (a test runs the script and checks them against
:data:`ENTRY_FIELDS`); the ledger reads them back with
:meth:`VoteEntry.from_fields`. ``restore_shard.lua`` reads ``n``, ``ts`` and
``p`` of the same entries.

=====  ==========================================================
field  value
=====  ==========================================================
id     vote id (hex), the ledger's primary key
ts     accepted time, epoch ms
n      nominee id
p      phone hash (HMAC-SHA256 hex)
ip     client IP hash (16 hex digits)
m      verification method: ``none`` (unverified campaign), ``sms``
       (votesvc's own SMS code) or ``partner:<id>``; absent from entries
       written before it existed, which read as ``none``
px     client network prefix hash (16 hex digits: the IPv4 /24 or IPv6
       /48 around the client, keyed as ``ClientIP.prefix_key``); absent
       from entries written before it existed, which read as ""
=====  ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ENTRY_FIELDS", "UNVERIFIED", "VoteEntry"]

ENTRY_FIELDS = ("id", "ts", "n", "p", "ip", "m", "px")
"""The fields of a vote stream entry, in the order ``cast_vote.lua`` writes them."""

UNVERIFIED = "none"
"""The verification method of a vote in a campaign that verifies nobody."""


@dataclass(frozen=True, slots=True)
class VoteEntry:
    """One accepted vote as its stream entry holds it."""

    vote_id: str
    accepted_at: int  # epoch ms
    nominee: str
    phone_hash: str
    ip_hash: str
    method: str = UNVERIFIED
    prefix_hash: str = ""  # "" for an entry written before the prefix was kept

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes]) -> VoteEntry:
        """The entry of a stream reply's field map; KeyError or ValueError if malformed."""
        return cls(
            fields[b"id"].decode(),
            int(fields[b"ts"]),
            fields[b"n"].decode(),
            fields[b"p"].decode(),
            fields[b"ip"].decode(),
            fields[b"m"].decode() if b"m" in fields else UNVERIFIED,
            fields[b"px"].decode() if b"px" in fields else "",
        )

    def fields(self) -> dict[str, str]:
        """The entry's fields as XADD takes them (``ENTRY_FIELDS`` order)."""
        values = (
            self.vote_id,
            str(self.accepted_at),
            self.nominee,
            self.phone_hash,
            self.ip_hash,
            self.method,
            self.prefix_hash,
        )
        return dict(zip(ENTRY_FIELDS, values, strict=True))
