from __future__ import annotations

import tracemalloc
from ipaddress import ip_network

import pytest

from votesvc.clientip import FORWARDED_MAX, ClientIP, keep_last_hops

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


def test_hostile_headers_leave_the_cache_bounded_by_client_addresses() -> None:
    client_ip = ClientIP(PROXIES, b"k")
    claims = ", ".join(f"198.18.{n // 256}.{n % 256}" for n in range(560))  # about 8 KB
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keys = {client_ip.key("10.0.0.2", f"{n}, {claims}, 192.0.2.{n % 5}") for n in range(1000)}
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(keys) == 5  # five clients behind the proxy
    assert grown < 200_000  # the 1,000 headers kept as cache keys would hold 8 MB
    assert client_ip.resolve("10.0.0.2", f"{claims}, 192.0.2.3") == "192.0.2.3"


def test_the_last_hops_are_kept_whole() -> None:
    assert keep_last_hops(b"192.0.2.1, 10.0.0.3") == b"192.0.2.1, 10.0.0.3"
    hops = ",".join(["10.0.0.9"] * 100)
    # "192.0.2.111," then trusted hops, long enough that the last 1 KiB starts at "2.0.2.111"
    header = "192.0.2.111," + " " * (FORWARDED_MAX - len("2.0.2.111,") - len(hops)) + hops
    assert header[-FORWARDED_MAX:].startswith("2.0.2.111,")
    client_ip = ClientIP(PROXIES, b"k")
    assert client_ip.resolve("10.0.0.2", header[-FORWARDED_MAX:]) == "2.0.2.111"  # cut blindly
    kept = keep_last_hops(header.encode()).decode()
    assert len(kept) < FORWARDED_MAX
    assert client_ip.resolve("10.0.0.2", kept) == "10.0.0.9"
    assert keep_last_hops(b"x" * 2000) == b""  # one hop longer than 1 KiB: nothing is read


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("198.51.100.7", "198.51.100.200", True),  # one IPv4 /24
        ("198.51.100.7", "198.51.101.7", False),
        ("2001:db8:1:2::1", "2001:db8:1:ffff::9", True),  # one IPv6 /48
        ("2001:db8:1::1", "2001:db8:2::1", False),
    ],
)
def test_prefix_key_groups_a_network(one: str, other: str, same: bool) -> None:
    client_ip = ClientIP((), b"k" * 32)
    assert (client_ip.prefix_key(one, None) == client_ip.prefix_key(other, None)) is same
    key = client_ip.prefix_key(one, None)
    assert len(key) == 16
    assert key != client_ip.key(one, None)  # a prefix is not hashed like an address
    assert one not in key


def test_a_vote_gets_both_hashes_from_one_cached_lookup() -> None:
    client_ip = ClientIP(PROXIES, b"k" * 32)
    ip_hash, prefix_hash = client_ip.client("10.0.0.2", "192.0.2.1")
    assert ip_hash == client_ip.key("10.0.0.2", "192.0.2.1") == client_ip.hash("192.0.2.1")
    assert prefix_hash == client_ip.prefix_key("192.0.2.200", None)  # one /24
    assert prefix_hash != client_ip.prefix_key("192.0.3.1", None)
    assert client_ip.client("10.0.0.2", "192.0.2.1") is client_ip.client("10.0.0.2", "192.0.2.1")
    v6 = client_ip.client("2001:db8:1:2::1", None)
    assert v6[1] == client_ip.prefix_key("2001:db8:1:ffff::9", None)  # one /48
    assert v6[0] != client_ip.key("2001:db8:1:ffff::9", None)  # two /64s
