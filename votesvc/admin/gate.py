"""Who may reach the console, and what the request's client is.

The client is resolved as for the vote path (``ClientIP``: the peer, or the
right-most untrusted ``X-Forwarded-For`` hop when the peer is one of the
campaign's ``trusted_proxies``). Outside ``VOTESVC_ADMIN_ALLOW`` the console
does not exist: ``/admin`` answers the API's own ``404``. The request counts
as https when it came so, or when a trusted proxy says so in
``X-Forwarded-Proto``; the cookies are then ``Secure``.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network

from starlette.requests import Request

from votesvc.clientip import ClientIP, keep_last_hops

__all__ = ["Gate"]


class Gate:
    def __init__(self, allow: Sequence[IPv4Network | IPv6Network], client_ip: ClientIP) -> None:
        self._allow = tuple(allow)
        self._client_ip = client_ip

    @staticmethod
    def _peer(request: Request) -> str | None:
        return request.client.host if request.client else None

    @staticmethod
    def _forwarded(request: Request) -> str | None:
        hops = request.headers.getlist("x-forwarded-for")
        if not hops:
            return None
        return keep_last_hops(",".join(hops).encode("latin-1")).decode("latin-1")

    def admits(self, request: Request) -> bool:
        """Whether the request's client is inside the allow-list."""
        address = self._client_ip.client_address(self._peer(request), self._forwarded(request))
        return address is not None and any(address in network for network in self._allow)

    def https(self, request: Request) -> bool:
        if request.url.scheme == "https":
            return True
        proto = request.headers.get("x-forwarded-proto", "")
        said = proto.rpartition(",")[2].strip().lower()  # the nearest proxy's word
        return said == "https" and self._client_ip.trusts(self._peer(request))

    def prefix(self, request: Request) -> str:
        """The keyed hash of the client's network (IPv4 /24, IPv6 /48)."""
        return self._client_ip.prefix_key(self._peer(request), self._forwarded(request))
