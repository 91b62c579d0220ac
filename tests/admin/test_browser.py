# ruff: noqa: RUF001  (the pages speak Chinese: full-width punctuation)
"""The console in a real headless Chromium: sign-in, voiding, the award line, screenshots.

As tests/test_browser.py: one browser and one live server (with its own Redis
and a SQLite ledger, its flusher running) for the module; every wait is on a
condition, with a bound. ``make screenshots`` (``-k screenshots``) refreshes
docs/screenshots/admin-*.png, which the README's console section links to.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest

from tests.admin.support import PASSWORD, add_account
from tests.ledger_support import cli
from tests.live_server import LiveServer
from tests.localhost import wait_until
from tests.support import SECRET, set_up_campaign_now
from tests.test_browser import PHONE, WAIT_MS, WIDE, browser, expect, screenshot_dir
from votesvc.app import create_app
from votesvc.campaign import Campaign, demo_campaign_text, parse_campaign
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

__all__ = ["browser"]  # the module's browser fixture, shared with tests/test_browser.py

pytestmark = pytest.mark.browser
T = TypeVar("T")

SEATS = 5
# Votes per nominee (N01..N15): the 5th and 6th tie on 40 across the award line.
RACE = [58, 52, 47, 44, 40, 40, 33, 30, 27, 25, 22, 20, 18, 16, 15]
SUSPECT = "13700001234"  # votes three times; the organiser voids those votes


def campaign_text() -> str:
    text = demo_campaign_text()
    assert "ip_limit = 600 " in text
    text = text.replace("ip_limit = 600 ", "ip_limit = 100000 ")
    return text.replace("[rules]\n", f"[rules]\naward_seats = {SEATS}\n", 1)


def in_thread(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a thread of its own: Playwright's loop runs in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


@pytest.fixture(scope="module")
def admin_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-admin-browser"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin_settings(
    admin_redis: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    data = tmp_path_factory.mktemp("admin-browser-data")
    (data / "campaign.toml").write_text(campaign_text(), "utf-8")
    return Settings(
        data_dir=data,
        redis_url=admin_redis.url,
        secret=SECRET,
        campaign_path=data / "campaign.toml",
        tally_refresh=0.2,
        redis_timeout=5.0,
    )


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return parse_campaign(campaign_text(), source="admin browser")


@pytest.fixture(scope="module")
def site(browser: Any, admin_settings: Settings, campaign: Campaign) -> Iterator[LiveServer]:
    set_up_campaign_now(admin_settings, campaign)
    in_thread(asyncio.run, add_account(admin_settings, "ann", "operator"))
    in_thread(asyncio.run, add_account(admin_settings, "vic", "viewer"))
    server = LiveServer(create_app(admin_settings, campaign=campaign)).start()
    yield server
    server.stop()


@pytest.fixture
def api(site: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=5) as client:
        yield client


def new_context(browser: Any, *, phone: bool = False) -> Any:
    if phone:
        return browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
        )
    return browser.new_context(viewport=WIDE, locale="zh-CN", timezone_id="Asia/Shanghai")


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = new_context(browser)
    yield ctx
    ctx.close()


_phones = iter(range(10_000_000))


def cast(api: httpx.Client, nominee: str, votes: int = 1, number: str | None = None) -> list[str]:
    ids = []
    for _ in range(votes):
        phone = number or f"136{next(_phones):08d}"
        response = api.post("/v1/votes", json={"nominee": nominee, "phone": phone})
        assert response.status_code == 201, response.text
        ids.append(response.json()["vote_id"])
    return ids


def on_page(page: Any, name: str) -> None:
    expect(page.locator("body")).to_have_attribute("data-page", name, timeout=WAIT_MS)


def sign_in(page: Any, site: LiveServer, name: str = "ann", password: str = PASSWORD) -> None:
    page.goto(site.url + "/admin")
    on_page(page, "signin")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("#signin button[type=submit]")
    on_page(page, "overview")


def preview_phone(page: Any, site: LiveServer, number: str) -> None:
    page.goto(site.url + "/admin/void")
    on_page(page, "void")
    page.fill("#phone", number)
    page.click("#by-phone button[type=submit]")
    expect(page.locator("h1")).to_have_text("作废选票：预览", timeout=WAIT_MS)


def test_screenshots(
    browser: Any, site: LiveServer, api: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shots = screenshot_dir(os.environ, tmp_path_factory)
    shots.mkdir(parents=True, exist_ok=True)
    for number, votes in enumerate(RACE, start=1):
        cast(api, f"N{number:02d}", votes)
    for nominee in ("N03", "N08", "N12"):
        cast(api, nominee, number=SUSPECT)
    wide, small = new_context(browser), new_context(browser, phone=True)
    try:
        page, mobile = wide.new_page(), small.new_page()
        mobile.goto(site.url + "/admin/login")
        on_page(mobile, "signin")
        mobile.screenshot(path=shots / "admin-signin-phone.png")
        sign_in(page, site)
        sign_in(mobile, site, "vic")

        def caught_up() -> bool:
            page.goto(site.url + "/admin/overview")
            return bool(page.locator('[data-key="backlog"] .value').text_content() == "0 张")

        wait_until(caught_up, WAIT_MS / 1000, "the ledger caught up")
        expect(page.locator('[data-key="total"] .value')).to_have_text(f"{sum(RACE) + 3:,}")
        expect(page.locator('[data-key="redis"] .value')).to_have_text("正常")
        page.screenshot(path=shots / "admin-overview.png", full_page=True)
        mobile.goto(site.url + "/admin/overview")
        on_page(mobile, "overview")
        mobile.screenshot(path=shots / "admin-overview-phone.png")

        page.goto(site.url + "/admin/award")
        on_page(page, "award")
        expect(page.locator("#cut")).to_have_attribute("data-after", str(SEATS))
        expect(page.locator('[data-code="cut_tie"]')).to_be_visible()
        page.screenshot(path=shots / "admin-award.png", full_page=True)
        mobile.goto(site.url + "/admin/award")
        on_page(mobile, "award")
        mobile.screenshot(path=shots / "admin-award-phone.png")

        page.goto(site.url + "/admin/void")
        on_page(page, "void")
        page.screenshot(path=shots / "admin-void.png", full_page=True)
        preview_phone(page, site, SUSPECT)
        expect(page.locator("#count")).to_have_attribute("data-count", "3")
        expect(page.locator("#by-nominee tbody tr")).to_have_count(3)
        page.fill("#reason", "同一手机号在短时间内集中投票，经核实为刷票")
        page.screenshot(path=shots / "admin-void-preview.png", full_page=True)
        page.click("#confirm button[type=submit]")
        expect(page.locator("#voided")).to_have_attribute("data-count", "3", timeout=WAIT_MS)
        page.screenshot(path=shots / "admin-void-done.png", full_page=True)

        page.goto(site.url + "/admin/audit")
        on_page(page, "audit")
        row = page.locator('#audit tr[data-action="void"]').first
        expect(row).to_contain_text("同一手机号在短时间内集中投票")
        expect(row).to_contain_text("ann")
        expect(page.locator('#audit tr[data-action="signin"]')).to_have_count(2)
        page.screenshot(path=shots / "admin-audit.png", full_page=True)
        mobile.goto(site.url + "/admin/audit")
        on_page(mobile, "audit")
        mobile.screenshot(path=shots / "admin-audit-phone.png")
    finally:
        wide.close()
        small.close()


def test_sign_in_and_out(context: Any, site: LiveServer) -> None:
    page = context.new_page()
    page.goto(site.url + "/admin/award")
    on_page(page, "signin")  # not signed in: back to sign-in
    page.fill("#name", "ann")
    page.fill("#password", "not the password")
    page.click("#signin button[type=submit]")
    expect(page.locator("body")).to_have_attribute("data-code", "wrong", timeout=WAIT_MS)
    expect(page.locator(".notice")).to_contain_text("账号或密码不对")
    sign_in(page, site)
    (cookie,) = [c for c in context.cookies() if c["name"] == "votesvc_admin"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/admin")
    expect(page.locator(".who-name")).to_have_text("ann")
    page.click(".who button")
    on_page(page, "signin")
    expect(page.locator(".notice")).to_contain_text("您已退出登录")
    page.goto(site.url + "/admin/overview")
    on_page(page, "signin")


def test_a_form_without_its_csrf_token_is_refused(context: Any, site: LiveServer) -> None:
    page = context.new_page()
    sign_in(page, site)
    page.goto(site.url + "/admin/void")
    page.select_option("#nominee", "N01")
    page.evaluate("document.querySelector('#by-nominee input[name=csrf]').remove()")
    with page.expect_response(lambda r: r.url.endswith("/admin/void/preview")) as answer:
        page.click("#by-nominee button[type=submit]")
    assert answer.value.status == 403
    expect(page.locator("body")).to_have_attribute("data-code", "csrf_failed")
    expect(page.locator(".notice")).to_contain_text("这次操作没有执行")


def test_a_viewer_is_refused_a_void(context: Any, site: LiveServer) -> None:
    page = context.new_page()
    sign_in(page, site, "vic")
    expect(page.locator(".menu a")).to_have_count(4)  # no 作废选票, 认证结果, 导出 for a viewer
    answer = page.goto(site.url + "/admin/void")
    assert answer is not None
    assert answer.status == 403
    expect(page.locator("body")).to_have_attribute("data-code", "forbidden")


def test_a_vote_voided_meanwhile_turns_the_confirm_into_a_fresh_preview(
    context: Any, site: LiveServer, api: httpx.Client, admin_settings: Settings
) -> None:
    number = "13700005678"
    ids = cast(api, "N02", number=number) + cast(api, "N04", number=number)
    page = context.new_page()
    sign_in(page, site)
    preview_phone(page, site, number)
    expect(page.locator("#count")).to_have_attribute("data-count", "2")
    page.fill("#reason", "刷票")
    code, _, err = in_thread(
        cli, admin_settings, "void", "--vote-id", ids[0], "--reason", "先作废一张"
    )
    assert code == 0, err
    with page.expect_response(lambda r: r.url.endswith("/admin/void/confirm")) as answer:
        page.click("#confirm button[type=submit]")
    assert answer.value.status == 409
    expect(page.locator("body")).to_have_attribute("data-code", "selection_changed")
    expect(page.locator("#count")).to_have_attribute("data-count", "1")
    expect(page.locator("#reason")).to_have_value("刷票")  # kept for the second try
    page.click("#confirm button[type=submit]")
    expect(page.locator("#voided")).to_have_attribute("data-count", "1", timeout=WAIT_MS)


def test_award_seats_moves_the_line_on_the_dashboard_the_award_page_and_the_command(
    context: Any, site: LiveServer, api: httpx.Client, admin_settings: Settings
) -> None:
    if not int(api.get("/v1/tally").json()["total"]):
        for number, votes in enumerate(RACE, start=1):
            cast(api, f"N{number:02d}", votes)
    page = context.new_page()
    page.goto(site.url + "/dashboard")
    expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(page.locator("#cut .cut-label")).to_contain_text(f"获奖线 · 前 {SEATS} 名")
    placed = page.evaluate(
        "[...document.querySelectorAll('#board > li')].indexOf(document.getElementById('cut'))"
    )
    fifth = page.evaluate("document.querySelectorAll('#board > li.row')[4].dataset.votes")
    above = page.evaluate(
        f"[...document.querySelectorAll('#board > li.row')].slice(0, {SEATS})"
        ".filter(r => r.dataset.status !== 'out').length"
    )
    assert above == SEATS
    assert placed >= SEATS
    expect(page.locator("#cut-votes")).to_have_text(f"{int(fifth):,} 票")

    sign_in(page, site)

    def in_the_ledger() -> bool:  # every vote written: the page and the command see the same
        page.goto(site.url + "/admin/award")
        return "正在写入账本" not in str(page.locator('[data-code="provisional"]').text_content())

    wait_until(in_the_ledger, WAIT_MS / 1000, "every vote in the ledger")
    expect(page.locator("#cut")).to_have_attribute("data-after", str(SEATS))
    awarded = page.locator('tbody tr[data-awarded="true"]')
    expect(awarded).to_have_count(SEATS)

    code, out, err = in_thread(cli, admin_settings, "award", "--provisional")
    assert code == 0, err
    assert f"cut line: places 1-{SEATS} receive the award" in out
    ranked = [line.split()[1] for line in out.splitlines() if re.match(r"\s+\d+\s", line)]
    shown = page.evaluate(
        "[...document.querySelectorAll('tbody tr[data-id]')].map(r => r.dataset.id)"
    )
    assert ranked == shown  # the page and the command rank alike
