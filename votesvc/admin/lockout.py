"""Wrong passwords lock an account, from one network, for a while.

Five wrong passwords for one account from one client network (the IPv4 /24 or
IPv6 /48 around the resolved client, as a keyed hash: ``ClientIP.prefix_key``)
within 15 minutes lock that account from that network until the oldest of
those five is 15 minutes old. Elsewhere the account signs in as usual: a
stranger cannot lock the organisers out from another network. While locked,
a password is not even checked. A right password clears the count.
"""

from __future__ import annotations

from votesvc.ledger.store.admin import AdminTables

__all__ = ["LOCK_MS", "MAX_WRONG", "Lockout"]

MAX_WRONG = 5
LOCK_MS = 15 * 60 * 1000


class Lockout:
    def __init__(self, tables: AdminTables) -> None:
        self._tables = tables

    async def locked_until(self, account: str, prefix: str, now_ms: int) -> int | None:
        """When the account opens again from ``prefix`` (epoch ms), or None if it is open."""
        wrong = await self._tables.failures(account, prefix, since=now_ms - LOCK_MS)
        if len(wrong) < MAX_WRONG:
            return None
        return wrong[-MAX_WRONG] + LOCK_MS

    async def wrong_password(self, account: str, prefix: str, now_ms: int) -> int | None:
        """Count one; returns when the account opens again if this locked it."""
        await self._tables.add_failure(account, prefix, now_ms, forget_before=now_ms - LOCK_MS)
        return await self.locked_until(account, prefix, now_ms)

    async def right_password(self, account: str, prefix: str) -> None:
        await self._tables.clear_failures(account, prefix)
