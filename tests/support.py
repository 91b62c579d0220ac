"""Helpers shared by the tests: campaign files, an injectable clock, a running app."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from redis.exceptions import RedisError
from starlette.applications import Starlette

from votesvc.app import create_app
from votesvc.campaign import Campaign, parse_campaign
from votesvc.connection import connect
from votesvc.keys import Keys
from votesvc.ledger.setup import settle_campaign
from votesvc.ledger.store import build_store
from votesvc.settings import Settings

SECRET = b"test-secret-long-enough-for-votesvc"  # VOTESVC_SECRET needs >= 32 characters
SHANGHAI_NOON = datetime.fromisoformat("2026-06-15T12:00:00+08:00").timestamp()

DEFAULT_RULES: dict[str, Any] = {
    "votes_per_phone_per_day": 10,
    "votes_per_nominee_per_phone_per_day": 1,
    "phone_burst_limit": 1000,
    "phone_burst_seconds": 10,
    "ip_limit": 100000,
    "ip_limit_seconds": 60,
    "trusted_proxies": [],
}


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def campaign_toml(
    *,
    campaign_id: str = "test-campaign",
    opens_at: str = "2026-01-01T00:00:00+08:00",
    closes_at: str = "2027-12-31T23:59:59+08:00",
    timezone: str = "Asia/Shanghai",
    nominees: int = 30,
    verification: dict[str, Any] | None = None,
    **rules: Any,
) -> str:
    """A campaign file; rules default to generous limits so tests pick their own.

    ``verification``: the ``[verification]`` table (None: none, an unverified campaign).
    """
    merged = {**DEFAULT_RULES, **rules}
    lines = [
        "[campaign]",
        f'id = "{campaign_id}"',
        'title = "Test campaign"',
        f'timezone = "{timezone}"',
        f'opens_at = "{opens_at}"',
        f'closes_at = "{closes_at}"',
        "",
        "[rules]",
        *(f"{key} = {_toml_value(value)}" for key, value in merged.items()),
    ]
    if verification is not None:
        lines += ["", "[verification]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in verification.items()]
    trades = ["welder", "fitter", "carpenter"]
    for index in range(1, nominees + 1):
        lines += [
            "",
            "[[nominees]]",
            f'id = "N{index:02d}"',
            f'name = "Nominee {index}"',
            f'trade = "{trades[index % 3]}"',
            'employer = "Works"',
        ]
    return "\n".join(lines) + "\n"


def make_campaign(**kwargs: Any) -> Campaign:
    return parse_campaign(campaign_toml(**kwargs))


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: float = SHANGHAI_NOON

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def phone(n: int) -> str:
    """A distinct valid mobile number for each ``n``."""
    return f"139{n:08d}"


@dataclass
class Service:
    """A running app and an HTTP client to it (in process, lifespan started)."""

    app: Starlette
    client: httpx.AsyncClient
    clock: FakeClock
    settings: Settings
    campaign: Campaign
    peers: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    async def vote(
        self, nominee: str, number: str, *, peer: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        client = self.client if peer is None else await self.from_peer(peer)
        return await client.post("/v1/votes", json={"nominee": nominee, "phone": number}, **kwargs)

    async def from_peer(self, peer: str) -> httpx.AsyncClient:
        """A client whose requests come from socket peer ``peer``."""
        if peer not in self.peers:
            transport = httpx.ASGITransport(app=self.app, client=(peer, 40000))
            self.peers[peer] = httpx.AsyncClient(transport=transport, base_url="http://votesvc")
        return self.peers[peer]

    async def fresh_tally(self) -> dict[str, Any]:
        """The tally after a refresh, not the one cached from before."""
        await self.app.state.api.board.refresh()
        response = await self.client.get("/v1/tally")
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result


@contextlib.asynccontextmanager
async def running_service(
    redis_url: str,
    tmp_path: Path,
    *,
    campaign: Campaign | None = None,
    clock: FakeClock | None = None,
    **settings: Any,
) -> AsyncIterator[Service]:
    clock = clock or FakeClock()
    campaign = campaign or make_campaign()
    settings.setdefault("flush_in_serve", False)  # ledger tests turn the flusher on
    # A slow moment of a busy test machine must not turn into 503s in tests that
    # are not about them; tests/test_redis_down.py runs the shipped budget.
    settings.setdefault("redis_timeout", 5.0)
    config = Settings(data_dir=tmp_path, redis_url=redis_url, secret=SECRET, **settings)
    if not config.flush_in_serve:  # else the app's own flusher process sets it up
        with contextlib.suppress(RedisError, OSError):  # unreachable: its votes wait
            await set_up_campaign(config, campaign)
    app = create_app(config, campaign=campaign, clock=clock)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://votesvc") as client,
    ):
        service = Service(app, client, clock, config, campaign)
        try:
            yield service
        finally:
            for peer in service.peers.values():
                await peer.aclose()


async def wait_for(
    condition: Callable[[], Awaitable[bool]], within: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


async def set_up_campaign(settings: Settings, campaign: Campaign) -> None:
    """What a process that opens the ledger does as it starts (votesvc.ledger.setup):
    the campaign's codes fixed in the ledger and mirrored into Redis, Redis marked."""
    store = build_store(settings)
    client = connect(settings)
    try:
        await store.open()
        await settle_campaign(store, client, Keys(campaign.id, settings.shards), campaign, settings)
    finally:
        await store.close()
        await client.aclose()


def set_up_campaign_now(settings: Settings, campaign: Campaign) -> None:
    """:func:`set_up_campaign` from synchronous code, even inside a running event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, set_up_campaign(settings, campaign)).result()
