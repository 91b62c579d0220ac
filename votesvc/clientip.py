"""Which client a request comes from, for the per-IP rate limit.

The client is the socket peer. Only when the peer is a trusted proxy is its
``X-Forwarded-For`` believed, and then the right-most address that is not
itself a trusted proxy counts (addresses further left are the client's own
claims). IPv6 clients are limited per /64, the block one subscriber gets.

Resolving and hashing cost more than the vote itself, so :meth:`ClientIP.key`
keeps the result per (peer, ``X-Forwarded-For``) in one bounded cache.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

__all__ = ["ClientIP"]

_CACHE_MAX = 65536

_Network = IPv4Network | IPv6Network
_Address = IPv4Address | IPv6Address


def _parse(text: str) -> _Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:5000"
        text = text.split(":", 1)[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientIP:
    """Resolves a request's client address and hashes it into a rate-limit key."""

    __slots__ = ("_cache", "_secret", "_trusted")

    def __init__(self, trusted_proxies: Sequence[_Network], secret: bytes) -> None:
        self._trusted = tuple(trusted_proxies)
        self._secret = secret
        self._cache: dict[tuple[str | None, str | None], str] = {}

    def key(self, peer: str | None, forwarded_for: str | None) -> str:
        """The per-IP limit's key (a keyed hash) for this peer and ``X-Forwarded-For``.

        ``forwarded_for`` is ignored unless some proxy is trusted.
        """
        if not self._trusted:
            forwarded_for = None
        cache_key = (peer, forwarded_for)
        cached = self._cache.get(cache_key)
        if cached is None:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            cached = self._cache[cache_key] = self.hash(self.resolve(peer, forwarded_for))
        return cached

    def _is_trusted(self, address: _Address) -> bool:
        return any(address in network for network in self._trusted)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        """The address (or IPv6 /64) that the IP limit counts for this request."""
        address = _parse(peer) if peer else None
        if address is None:
            return peer or "unknown"
        if forwarded_for and self._trusted and self._is_trusted(address):
            for hop in reversed(forwarded_for.split(",")):
                claimed = _parse(hop)
                if claimed is None:
                    break  # a garbled hop: trust nothing further left
                address = claimed
                if not self._is_trusted(claimed):
                    break
        if isinstance(address, IPv6Address):
            return str(IPv6Network((address, 64), strict=False))
        return str(address)

    def hash(self, client: str) -> str:
        """The keyed hash (16 hex digits) of a resolved client address."""
        digest = hmac.new(self._secret, b"ip:" + client.encode(), hashlib.sha256)
        return digest.hexdigest()[:16]
