# ruff: noqa: RUF001  (the pages speak Chinese: full-width punctuation)
"""As an organiser would, in a real headless Chromium: find a planted burst on 可疑活动,
preview and void it, certify the result after the vote, see it published at /results,
and export the file whose SHA-256 was certified. Screenshots for the README.

The race is written into the ledger over the days before (the ledger is what these
pages read); the burst and a bot voting the same list come through the vote path,
from networks of their own (the server trusts 127.0.0.1 as a proxy, so each vote
names its client in X-Forwarded-For). The service's clock jumps past the close to
certify; votes, judged by Redis's clock, are never cast after it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.admin.support import add_account
from tests.admin.test_browser import RACE, in_thread, new_context, on_page, sign_in
from tests.live_server import LiveServer
from tests.localhost import wait_until
from tests.support import SECRET, set_up_campaign_now
from tests.test_browser import WAIT_MS, browser, expect, screenshot_dir
from votesvc.app import create_app
from votesvc.campaign import Campaign, demo_campaign_text, parse_campaign
from votesvc.ledger.store import VoteRow, build_store
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

__all__ = ["browser"]  # the module's browser fixture, shared with tests/test_browser.py

pytestmark = pytest.mark.browser

SHANGHAI = "+08:00"
BURST = 210  # votes for N07 from one network: over the 200 an hour of the defaults
BOTS = 20  # phones voting N02, N05, N09 in that order
BURST_NET = "203.0.113"


def closes_at() -> datetime:
    """Tomorrow, 20:00 in Beijing: voting stays open while the test votes."""
    tomorrow = datetime.now().astimezone() + timedelta(days=1)
    return datetime.fromisoformat(f"{tomorrow:%Y-%m-%d}T20:00:00{SHANGHAI}")


def campaign_text(closes: datetime) -> str:
    text = demo_campaign_text()
    for old, new in (
        ("ip_limit = 600 ", "ip_limit = 100000 "),
        ("trusted_proxies = []", 'trusted_proxies = ["127.0.0.1/32"]'),
        ('closes_at = "2027-12-31T23:59:59+08:00"', f'closes_at = "{closes.isoformat()}"'),
    ):
        assert old in text
        text = text.replace(old, new)
    return text


class JumpingClock:
    """Real time, plus an offset the test sets: the organisers' clock after the close."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def certify_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-certify-browser"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scene(
    browser: Any, certify_redis: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, Campaign, JumpingClock]]:
    data = tmp_path_factory.mktemp("certify-browser-data")
    closes = closes_at()
    (data / "campaign.toml").write_text(campaign_text(closes), "utf-8")
    campaign = parse_campaign(campaign_text(closes), source="certify browser")
    settings = Settings(
        data_dir=data,
        redis_url=certify_redis.url,
        secret=SECRET,
        campaign_path=data / "campaign.toml",
        tally_refresh=0.2,
        redis_timeout=5.0,
    )
    set_up_campaign_now(settings, campaign)
    in_thread(asyncio.run, add_account(settings, "zhangli", "operator"))
    in_thread(asyncio.run, write_race(settings, campaign))
    clock = JumpingClock()
    server = LiveServer(create_app(settings, campaign=campaign, clock=clock)).start()
    yield server, campaign, clock
    server.stop()


async def write_race(settings: Settings, campaign: Campaign) -> None:
    """The race of the last three days, as the ledger holds it: each vote its own
    phone and network."""
    rng = random.Random(16)
    plan = [f"N{n:02d}" for n, votes in enumerate(RACE, start=1) for _ in range(votes)]
    rng.shuffle(plan)
    end = int(time.time() * 1000) - 2 * 3600 * 1000
    start = end - 3 * 24 * 3600 * 1000
    rows = [
        VoteRow(
            f"{start + k:012x}{rng.getrandbits(80):020x}",
            campaign.id,
            nominee,
            f"{rng.getrandbits(256):064x}",
            f"{rng.getrandbits(64):016x}",
            start + k * (end - start) // len(plan),
            "none",
            f"{rng.getrandbits(64):016x}",
        )
        for k, nominee in enumerate(plan)
    ]
    store = build_store(settings)
    await store.open()
    try:
        await store.insert_votes(rows)
    finally:
        await store.close()


def vote(api: httpx.Client, nominee: str, number: str, client: str) -> str:
    response = api.post(
        "/v1/votes",
        json={"nominee": nominee, "phone": number},
        headers={"X-Forwarded-For": client},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["vote_id"])


def plant(api: httpx.Client) -> list[str]:
    """The burst (one network, within one clock hour) and the bots; the burst's ids."""
    wait_until(lambda: time.time() % 3600 < 3600 - 30, 35, "a clock hour with room")
    burst = [
        vote(api, "N07", f"1370000{n:04d}", f"{BURST_NET}.{n % 250 + 1}") for n in range(BURST)
    ]
    for n in range(BOTS):
        for nominee in ("N02", "N05", "N09"):
            vote(api, nominee, f"1360000{n:04d}", f"100.64.{n}.{n + 1}")
    return burst


def test_screenshots_an_organiser_voids_a_burst_certifies_and_publishes(
    browser: Any,
    scene: tuple[LiveServer, Campaign, JumpingClock],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    site, campaign, clock = scene
    shots = screenshot_dir(os.environ, tmp_path_factory)
    shots.mkdir(parents=True, exist_ok=True)
    wide, small = new_context(browser), new_context(browser, phone=True)
    try:
        page, mobile = wide.new_page(), small.new_page()
        mobile.goto(site.url + "/results")
        expect(mobile.locator("#pending")).to_contain_text("结果尚未公布")
        mobile.screenshot(path=shots / "results-pending-phone.png")

        with httpx.Client(base_url=site.url, timeout=10) as api:
            burst = plant(api)
        sign_in(page, site, "zhangli")

        # 可疑活动: the burst, under three signals, and the bots.
        page.goto(site.url + "/admin/suspects")
        on_page(page, "suspects")
        rows = page.locator("#suspects tbody tr")
        expect(page.locator('#suspects tr[data-signal="prefix_votes_per_hour"]')).to_have_attribute(
            "data-votes", str(BURST)
        )
        expect(page.locator('#suspects tr[data-signal="nominee_spike"]')).to_have_count(1)
        expect(page.locator('#suspects tr[data-signal="top_prefix_share"]')).to_have_count(1)
        expect(page.locator('#suspects tr[data-signal="same_sequence"]')).to_have_attribute(
            "data-votes", str(BOTS * 3)
        )
        expect(rows).to_have_count(4)
        page.screenshot(path=shots / "admin-suspects.png", full_page=True)

        # Its preview names exactly the burst; the organiser voids it.
        page.locator('#suspects tr[data-signal="prefix_votes_per_hour"] button').click()
        expect(page.locator("h1")).to_have_text("作废选票：预览", timeout=WAIT_MS)
        expect(page.locator("#count")).to_have_attribute("data-count", str(BURST))
        shown = page.evaluate("[...document.querySelectorAll('td.mono')].map(td => td.textContent)")
        assert set(shown) <= set(burst)
        page.fill("#reason", "同一网段在一分钟内集中投票 210 张，经核实为刷票")
        page.screenshot(path=shots / "admin-suspects-preview.png", full_page=True)
        page.click("#confirm button[type=submit]")
        expect(page.locator("#voided")).to_have_attribute("data-count", str(BURST), timeout=WAIT_MS)
        page.click("text=回到可疑活动")
        on_page(page, "suspects")
        expect(page.locator("#suspects tbody tr")).to_have_count(1)  # the bots remain
        page.locator('#suspects tr[data-signal="same_sequence"] button').click()
        expect(page.locator("#count")).to_have_attribute("data-count", str(BOTS * 3))
        page.fill("#reason", "20 个号码按相同顺序投票，经核实为刷票软件")
        page.click("#confirm button[type=submit]")
        expect(page.locator("#voided")).to_have_attribute("data-count", str(BOTS * 3))

        # Certifying waits for the close; then the organiser certifies.
        page.goto(site.url + "/admin/certify")
        expect(page.locator("body")).to_have_attribute("data-code", "not_ready")
        clock.offset = campaign.closes_at.timestamp() + 5 * 60 - time.time()
        sign_in(page, site, "zhangli")  # the jump ended the session

        def ready_to_certify() -> bool:  # every vote written to the ledger
            page.goto(site.url + "/admin/certify")
            return bool(page.locator("body").get_attribute("data-code") != "not_ready")

        wait_until(ready_to_certify, WAIT_MS / 1000, "the certify form")
        expect(page.locator("#winners tbody tr")).to_have_count(campaign.rules.award_seats)
        page.screenshot(path=shots / "admin-certify.png", full_page=True)
        page.check("#certify input[name=confirm]")
        page.click("#certify button[type=submit]")
        expect(page.locator('[data-code="certified"]')).to_contain_text("结果已认证并公布")
        digest = page.locator("#sha256").text_content()
        assert digest is not None
        assert len(digest) == 64
        page.screenshot(path=shots / "admin-certify-done.png", full_page=True)

        # Published.
        page.goto(site.url + "/results")
        expect(page.locator("body")).to_have_attribute("data-certified", "true")
        expect(page.locator("#winners li")).to_have_count(campaign.rules.award_seats)
        first = campaign.nominee("N01")
        assert first is not None
        expect(page.locator("#winners li").first).to_contain_text(first.name)
        page.screenshot(path=shots / "results-wide.png", full_page=True)
        mobile.goto(site.url + "/results")
        expect(mobile.locator("body")).to_have_attribute("data-certified", "true")
        mobile.screenshot(path=shots / "results-phone.png", full_page=True)

        # A void now is refused; the export is the certified one.
        page.goto(site.url + "/admin/void")
        expect(page.locator("body")).to_have_attribute("data-code", "result_certified")
        downloader = page
        downloader.goto(site.url + "/admin/export")
        on_page(downloader, "export")
        downloader.click("#export button[type=submit]")
        expect(downloader.locator('[data-code="matches"]')).to_be_visible(timeout=WAIT_MS)
        assert downloader.locator("#sha256").text_content() == digest
        downloader.screenshot(path=shots / "admin-export.png", full_page=True)
        with downloader.expect_download() as caught:
            downloader.click("#download")
        saved = Path(caught.value.path())
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest
        assert caught.value.suggested_filename == f"votes-{campaign.id}.csv"
    finally:
        wide.close()
        small.close()
