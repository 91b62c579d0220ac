"""Which client a request comes from, for the per-IP rate limit.

The client is the socket peer. Only when the peer is a trusted proxy is its
``X-Forwarded-For`` believed, and then the right-most address that is not
itself a trusted proxy counts (addresses further left are the client's own
claims). IPv6 clients are limited per /64, the block one subscriber gets.

Resolving and hashing cost more than the vote itself, so :meth:`ClientIP.client`
keeps both hashes a vote records, of the address and of its network prefix
(IPv4 /24, IPv6 /48), in one bounded cache keyed by what the client writes
least: the peer when no proxy is trusted (the header is ignored), else the
resolved address. Never by the header itself: a client writes whatever it
likes there, so 3,000 requests with 8 KB headers would hold 24.6 MB. A vote
from a client seen before costs one lookup; the two HMACs are paid once per
client.

Only the last :data:`FORWARDED_MAX` bytes of ``X-Forwarded-For`` are read
(:func:`keep_last_hops`): the hops that count are the right-most ones, which
each proxy appends; what lies further left is the client's own claim.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

__all__ = ["FORWARDED_MAX", "ClientIP", "keep_last_hops"]

_CACHE_MAX = 65536
_ADDRESS_MAX = 64  # characters of the longest address as written ("[IPv6]:port")
FORWARDED_MAX = 1024  # bytes of X-Forwarded-For read, from its end

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


def keep_last_hops(forwarded_for: bytes) -> bytes:
    """The whole hops within the last :data:`FORWARDED_MAX` bytes of ``forwarded_for``.

    The hop cut in two is dropped: its right half could read as another address.
    """
    if len(forwarded_for) <= FORWARDED_MAX:
        return forwarded_for
    return forwarded_for[-FORWARDED_MAX:].partition(b",")[2]


class ClientIP:
    """Resolves a request's client address and hashes it into a rate-limit key."""

    __slots__ = ("_addresses", "_cache", "_secret", "_trusted")

    def __init__(self, trusted_proxies: Sequence[_Network], secret: bytes) -> None:
        self._trusted = tuple(trusted_proxies)
        self._secret = secret
        # peer (no proxy trusted) or resolved address -> (IP hash, prefix hash); both
        # keys are short strings and share one map safely: resolve() returns its own
        # results unchanged.
        self._cache: dict[str | None, tuple[str, str]] = {}
        # an address as a peer or a proxy wrote it -> (what it counts as, trusted?):
        # parsing costs more than the rest of resolve(); only real addresses are kept.
        self._addresses: dict[str, tuple[str, bool]] = {}

    def client(self, peer: str | None, forwarded_for: str | None) -> tuple[str, str]:
        """(:meth:`key`, :meth:`prefix_key`) of this peer and ``X-Forwarded-For``, from
        one cached lookup: what a vote records of where it came from.

        ``forwarded_for`` is ignored unless some proxy is trusted.
        """
        # The common case, no proxy: the peer is the client and the key, unresolved.
        cache_key = self.resolve(peer, forwarded_for) if self._trusted and forwarded_for else peer
        cached = self._cache.get(cache_key)
        if cached is None:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            client = self.resolve(cache_key, None)
            cached = self._cache[cache_key] = (
                self.hash(client),
                _prefix_hash(self._secret, client),
            )
        return cached

    def key(self, peer: str | None, forwarded_for: str | None) -> str:
        """The per-IP limit's key (a keyed hash) for this peer and ``X-Forwarded-For``.

        ``forwarded_for`` is ignored unless some proxy is trusted.
        """
        return self.client(peer, forwarded_for)[0]

    def _address(self, text: str) -> tuple[str, bool] | None:
        """(what ``text`` counts as, whether it is a trusted proxy), or None if no address."""
        known = self._addresses.get(text)
        if known is None and len(text) <= _ADDRESS_MAX:
            address = _parse(text)
            if address is None:
                return None
            if len(self._addresses) >= _CACHE_MAX:
                self._addresses.clear()
            trusted = any(address in network for network in self._trusted)
            counted = (
                str(IPv6Network((address, 64), strict=False))
                if isinstance(address, IPv6Address)
                else str(address)
            )
            known = self._addresses[text] = (counted, trusted)
        return known

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        """The address (or IPv6 /64) that the IP limit counts for this request.

        ``forwarded_for`` must hold whole hops: a hop cut short could read as
        another address (:func:`keep_last_hops` drops it).
        """
        found = self._address(peer) if peer else None
        if found is None:
            return peer or "unknown"
        counted, trusted = found
        if forwarded_for and trusted:
            for hop in reversed(forwarded_for.split(",")):
                claimed = self._address(hop.strip())
                if claimed is None:
                    break  # a garbled hop: trust nothing further left
                counted, trusted = claimed
                if not trusted:
                    break
        return counted

    def prefix_key(self, peer: str | None, forwarded_for: str | None) -> str:
        """The keyed hash (16 hex digits) of the client's network prefix.

        The prefix is the IPv4 /24 or IPv6 /48 around the resolved client: the
        unit the verification limits count, since one subscriber or one NAT
        gateway can hold many addresses inside it; the ledger keeps it with
        each vote, for the organisers' suspicious-activity signals.
        """
        return self.client(peer, forwarded_for)[1]

    def trusts(self, peer: str | None) -> bool:
        """Whether the socket peer is a trusted proxy (its ``X-Forwarded-*`` count)."""
        address = _parse(peer) if peer else None
        return address is not None and any(address in network for network in self._trusted)

    def client_address(self, peer: str | None, forwarded_for: str | None) -> _Address | None:
        """The client's own address, resolved as :meth:`resolve` does but not widened
        to its /64: what an allow-list is checked against. None: no address at all.

        ``forwarded_for`` must hold whole hops (:func:`keep_last_hops`).
        """
        address = _parse(peer) if peer else None
        if address is None or not forwarded_for or not self.trusts(peer):
            return address
        for hop in reversed(forwarded_for.split(",")):
            claimed = _parse(hop) if len(hop.strip()) <= _ADDRESS_MAX else None
            if claimed is None:
                break  # a garbled hop: trust nothing further left
            address = claimed
            if not any(claimed in network for network in self._trusted):
                break
        return address

    def hash(self, client: str) -> str:
        """The keyed hash (16 hex digits) of a resolved client address."""
        digest = hmac.new(self._secret, b"ip:" + client.encode(), hashlib.sha256)
        return digest.hexdigest()[:16]


def _prefix_hash(secret: bytes, client: str) -> str:
    """The keyed hash (16 hex digits) of the network prefix around a resolved client."""
    try:
        network = ip_network(client, strict=False)
    except ValueError:  # "unknown": no address at all
        prefix = client
    else:
        size = 24 if network.version == 4 else 48
        prefix = str(network.supernet(new_prefix=size) if network.prefixlen > size else network)
    digest = hmac.new(secret, b"prefix:" + prefix.encode(), hashlib.sha256)
    return digest.hexdigest()[:16]
