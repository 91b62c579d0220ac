from __future__ import annotations

from ipaddress import ip_network

import pytest

from votesvc.clientip import ClientIP

PROXIES = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "192.0.2.1", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.2", "192.0.2.1", "192.0.2.1"),
        ("10.0.0.2", "6.6.6.6, 192.0.2.1, 10.0.0.7", "192.0.2.1"),
        ("10.0.0.2", "10.0.0.3, 10.0.0.4", "10.0.0.3"),  # all trusted: the left-most
        ("10.0.0.2", "garbage, 192.0.2.1", "192.0.2.1"),
        ("10.0.0.2", "192.0.2.1, garbage", "10.0.0.2"),  # garbled right-most hop
        ("10.0.0.2", "[2001:db8::1]:443", "2001:db8::/64"),
        ("10.0.0.2", "192.0.2.1:5555", "192.0.2.1"),
        ("2001:db8:aa:bb:1:2:3:4", None, "2001:db8:aa:bb::/64"),
        ("::ffff:192.0.2.8", None, "192.0.2.8"),
        ("fd00::1", "2001:db8:1:2::5", "2001:db8:1:2::/64"),
        (None, None, "unknown"),
    ],
)
def test_resolve(peer: str | None, forwarded: str | None, expected: str) -> None:
    assert ClientIP(PROXIES, b"k").resolve(peer, forwarded) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert ClientIP([], b"k").resolve("10.0.0.2", "192.0.2.1") == "10.0.0.2"


def test_hash_is_keyed_and_short() -> None:
    one = ClientIP([], b"k").hash("192.0.2.1")
    assert len(one) == 16
    assert one != ClientIP([], b"other").hash("192.0.2.1")
    assert "192.0.2.1" not in one
