"""Helpers for the console's tests: an app with a ledger and accounts, organisers' clients."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx

from tests.support import Service, running_service
from votesvc.admin.accounts import Passwords
from votesvc.ledger.store import build_store
from votesvc.ledger.store.admin import Account, AdminTables
from votesvc.settings import Settings

PASSWORD = "correct horse battery staple"
OTHER_PASSWORD = "another long passphrase"
# The service's own client is 198.51.100.7; another network is let in too, for the lockout.
HERE = "198.51.100.7"
ELSEWHERE = "203.0.113.9"
ALLOW = (ip_network("198.51.100.0/24"), ip_network("203.0.113.0/24"))
_HASHER = Passwords()  # one hash per password for the whole run: argon2 is slow on purpose
_HASHES: dict[str, str] = {}


def password_hash(password: str) -> str:
    if password not in _HASHES:
        _HASHES[password] = _HASHER.hash(password)
    return _HASHES[password]


async def add_account(
    settings: Settings, name: str, role: str = "operator", password: str = PASSWORD
) -> None:
    store = build_store(settings)
    await store.open()
    try:
        account = Account(name, role, password_hash(password), False, 0, None)
        assert await AdminTables(store).add_account(account)
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def console_service(
    redis_url: str,
    tmp_path: Path,
    database_url: str | None = None,
    *,
    accounts: dict[str, str] | None = None,
    **kwargs: Any,
) -> AsyncIterator[Service]:
    """A running app whose console lets in :data:`ALLOW` (``admin_allow=None``: the
    default, loopback), with ``accounts`` (name -> role; default ann, an operator)."""
    kwargs.setdefault("admin_allow", ALLOW)
    if kwargs["admin_allow"] is None:
        del kwargs["admin_allow"]
    if database_url is not None:
        kwargs["database_url"] = database_url
    async with running_service(redis_url, tmp_path, **kwargs) as service:
        for name, role in (accounts if accounts is not None else {"ann": "operator"}).items():
            await add_account(service.settings, name, role)
        yield service


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the page has no CSRF field"
    return found[1]


def code_of(page: str) -> str | None:
    found = re.search(r'<body data-page="[^"]*" data-code="([^"]+)"', page)
    return found[1] if found else None


class Organiser:
    """Someone at the console, with a browser's cookie jar (an httpx client)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def sign_in(
        self, name: str = "ann", password: str = PASSWORD, **kwargs: Any
    ) -> httpx.Response:
        page = await self.client.get("/admin/login", **kwargs)
        assert page.status_code == 200, page.text
        form = {"csrf": csrf_of(page.text), "name": name, "password": password}
        return await self.client.post("/admin/login", data=form, **kwargs)

    async def csrf(self) -> str:
        page = await self.client.get("/admin/overview")
        assert page.status_code == 200, page.text
        return csrf_of(page.text)

    async def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        """A form with this session's CSRF token."""
        return await self.client.post(path, data={"csrf": await self.csrf(), **data})


@contextlib.asynccontextmanager
async def organiser(
    service: Service, peer: str = HERE, *, base_url: str = "http://votesvc"
) -> AsyncIterator[Organiser]:
    """A new organiser (own cookies) whose requests come from socket peer ``peer``."""
    transport = httpx.ASGITransport(app=service.app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield Organiser(client)
