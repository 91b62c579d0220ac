"""Who reaches the console: VOTESVC_ADMIN_ALLOW, trusted proxies, https."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from starlette.requests import Request

from votesvc.admin.gate import Gate
from votesvc.clientip import ClientIP
from votesvc.errors import ConfigError
from votesvc.settings import Settings

SECRET = b"s" * 40


def request(peer: str, *headers: tuple[str, str], scheme: str = "http") -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/admin/login",
        "headers": raw,
        "client": (peer, 5000),
        "scheme": scheme,
        "server": ("votesvc", 80),
        "query_string": b"",
    }
    return Request(scope)


def test_the_default_allows_loopback_only() -> None:
    gate = Gate(Settings().admin_allow, ClientIP((), SECRET))
    assert gate.admits(request("127.0.0.1"))
    assert gate.admits(request("127.8.9.10"))
    assert gate.admits(request("::1"))
    assert gate.admits(request("::ffff:127.0.0.1"))  # an IPv4 peer on a dual-stack socket
    assert not gate.admits(request("10.0.0.1"))
    assert not gate.admits(request("::2"))
    assert not gate.admits(request("10.0.0.1", ("X-Forwarded-For", "127.0.0.1")))


def test_behind_trusted_proxies_the_forwarded_client_is_checked() -> None:
    client_ip = ClientIP((ip_network("10.0.0.0/8"),), SECRET)
    gate = Gate((ip_network("192.168.5.0/24"), ip_network("2001:db8:1::/48")), client_ip)
    assert not gate.admits(request("10.0.0.1"))
    assert gate.admits(request("10.0.0.1", ("X-Forwarded-For", "192.168.5.20")))
    assert gate.admits(request("10.0.0.1", ("X-Forwarded-For", "2001:db8:1::7, 10.0.0.9")))
    assert not gate.admits(request("10.0.0.1", ("X-Forwarded-For", "192.168.5.20, 8.8.8.8")))
    assert not gate.admits(request("10.0.0.1", ("X-Forwarded-For", "garbage")))
    assert not gate.admits(request("8.8.8.8", ("X-Forwarded-For", "192.168.5.20")))


def test_https_directly_or_said_by_a_trusted_proxy() -> None:
    gate = Gate((), ClientIP((ip_network("10.0.0.0/8"),), SECRET))
    assert gate.https(request("8.8.8.8", scheme="https"))
    assert not gate.https(request("8.8.8.8", ("X-Forwarded-Proto", "https")))
    assert gate.https(request("10.0.0.1", ("X-Forwarded-Proto", "https")))
    assert not gate.https(request("10.0.0.1", ("X-Forwarded-Proto", "http")))


def test_the_prefix_is_the_clients_network() -> None:
    gate = Gate((), ClientIP((ip_network("10.0.0.0/8"),), SECRET))
    here = gate.prefix(request("198.51.100.7"))
    assert gate.prefix(request("198.51.100.250")) == here
    assert gate.prefix(request("10.0.0.1", ("X-Forwarded-For", "198.51.100.9"))) == here
    assert gate.prefix(request("198.51.101.7")) != here
    assert gate.prefix(request("2001:db8:1:2::1")) == gate.prefix(request("2001:db8:1:ffff::1"))
    assert gate.prefix(request("2001:db8:1:2::1")) != gate.prefix(request("2001:db8:2::1"))
    assert "198.51.100" not in here


def test_votesvc_admin_allow_is_a_list_of_cidrs() -> None:
    env = {
        "VOTESVC_SECRET": "x" * 40,
        "VOTESVC_ADMIN_ALLOW": "10.1.0.0/16, 2001:db8::/32,192.0.2.4",
    }
    assert Settings.from_env(env).admin_allow == (
        ip_network("10.1.0.0/16"),
        ip_network("2001:db8::/32"),
        ip_network("192.0.2.4/32"),
    )
    assert Settings.from_env({"VOTESVC_SECRET": "x" * 40}).admin_allow == (
        ip_network("127.0.0.0/8"),
        ip_network("::1/128"),
    )
    with pytest.raises(ConfigError, match="VOTESVC_ADMIN_ALLOW: 'office' is not a CIDR"):
        Settings.from_env({"VOTESVC_SECRET": "x" * 40, "VOTESVC_ADMIN_ALLOW": "office"})
