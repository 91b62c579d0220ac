"""The dashboard and the campaign page in a real headless Chromium (Debian's).

One browser for the module, one live server with its own Redis (so a test can
stop and start it). Every wait is on a condition on the page, with a bound.
The screenshots land in a temporary directory; `make screenshots` sets
VOTESVC_SCREENSHOTS_DIR to refresh docs/screenshots/, which the README links to.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.live_server import LiveServer
from tests.localhost import wait_until
from tests.support import SECRET, SHANGHAI_NOON, set_up_campaign_now
from votesvc.app import create_app
from votesvc.campaign import Campaign, demo_campaign_text, parse_campaign
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections fail on a closed network.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
SCREENSHOTS_ENV = "VOTESVC_SCREENSHOTS_DIR"  # set by `make screenshots` to DOCS_SCREENSHOTS
WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 10_000

# For the screenshots: a race with a tie across the award line (10th and 11th on 25).
RACE = [58, 52, 47, 44, 40, 37, 33, 30, 27, 25, 25, 22, 20, 18, 16]
RACE += [15, 13, 12, 10, 9, 8, 7, 6, 5, 4, 4, 3, 2, 1, 0]
RACE_ORDER = [7, 4, 22, 13, 1, 28, 10, 19, 16, 25, 2, 8, 14, 30, 5]
RACE_ORDER += [11, 20, 26, 3, 17, 23, 29, 6, 9, 12, 15, 18, 21, 24, 27]


def _require_browser() -> None:
    reason = None
    if not CHROMIUM.exists():
        reason = "Debian's chromium is missing: run `bash deploy/system-packages.sh test` as root"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the playwright package is missing: pip install -e '.[dev]'"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def browser_campaign() -> Campaign:
    """The demo campaign (its Chinese names), with a generous limit for loopback voting."""
    text = demo_campaign_text()
    assert "ip_limit = 600 " in text
    return parse_campaign(text.replace("ip_limit = 600 ", "ip_limit = 100000 "), source="demo")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-browser"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def site_settings(site_redis: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("browser-data"),
        redis_url=site_redis.url,
        secret=SECRET,
        tally_refresh=0.2,
        flush_in_serve=False,
    )


@pytest.fixture(scope="module")
def site(browser: Any, site_settings: Settings) -> Iterator[LiveServer]:
    started = time.time()
    set_up_campaign_now(site_settings, browser_campaign())
    # Real time moving on, from a day the campaign is open.
    app = create_app(
        site_settings,
        campaign=browser_campaign(),
        clock=lambda: SHANGHAI_NOON + time.time() - started,
    )
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def api(site: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=5) as client:
        yield client


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=WIDE, locale="zh-CN", timezone_id="Asia/Shanghai")
    yield ctx
    ctx.close()


_phones = iter(range(10_000_000))


def cast(api: httpx.Client, nominee: str, votes: int = 1) -> None:
    for _ in range(votes):
        phone = f"138{next(_phones):08d}"
        response = api.post("/v1/votes", json={"nominee": nominee, "phone": phone})
        assert response.status_code == 201, response.text


def total(api: httpx.Client) -> int:
    value: int = api.get("/v1/tally").json()["total"]
    return value


def open_dashboard(page: Any, site: LiveServer) -> None:
    page.goto(f"{site.url}/dashboard")
    expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=WAIT_MS)


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_dashboard_updates_without_reload(
    context: Any, site: LiveServer, api: httpx.Client
) -> None:
    page = context.new_page()
    open_dashboard(page, site)
    expect(page.locator("body")).to_have_attribute("data-mode", "push")
    before = total(api)
    expect(page.locator("#total")).to_have_attribute("data-value", str(before))
    expect(page.locator(".row")).to_have_count(30)
    page.evaluate("window.__sameDocument = true")
    row = page.locator('.row[data-id="N12"]')
    votes_before = int(row.get_attribute("data-votes"))

    cast(api, "N12", 3)

    expect(page.locator("#total")).to_have_attribute("data-value", str(before + 3), timeout=WAIT_MS)
    expect(row).to_have_attribute("data-votes", str(votes_before + 3), timeout=WAIT_MS)
    expect(row.locator(".votes")).to_have_text(str(votes_before + 3))
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"

    page.locator('.chip[data-trade="焊工"]').click()
    expect(page.locator(".row")).to_have_count(3)
    expect(page.locator(".row .trade")).to_have_text(["焊工"] * 3)
    page.locator('.chip[data-trade=""]').click()
    expect(page.locator(".row")).to_have_count(30)


def test_dashboard_polls_with_if_none_match_without_event_source(
    context: Any, site: LiveServer, api: httpx.Client
) -> None:
    page = context.new_page()
    page.add_init_script("delete window.EventSource")
    conditional: list[str | None] = []

    def note_poll(request: Any) -> None:
        if request.url.endswith("/v1/tally"):
            conditional.append(request.headers.get("if-none-match"))

    page.on("request", note_poll)
    open_dashboard(page, site)
    expect(page.locator("body")).to_have_attribute("data-mode", "poll")
    before = total(api)
    page.wait_for_event("response", lambda r: _tally_status(r, 304), timeout=WAIT_MS)

    cast(api, "N05", 2)

    expect(page.locator("#total")).to_have_attribute("data-value", str(before + 2), timeout=WAIT_MS)
    assert any(tag for tag in conditional), "polls should send If-None-Match"


def _tally_status(response: Any, status: int) -> bool:
    return bool(response.url.endswith("/v1/tally") and response.status == status)


def test_campaign_page_vote_outcomes(context: Any, site: LiveServer) -> None:
    page = context.new_page()
    page.goto(site.url + "/")
    expect(page.locator(".vote")).to_have_count(30, timeout=WAIT_MS)
    expect(page.locator(".trade h2")).to_have_count(10)
    message = page.locator("#message")

    page.locator('.vote[data-id="N01"]').click()
    expect(message).to_have_attribute("data-outcome", "missing_phone")

    page.fill("#phone", "12345")
    page.locator('.vote[data-id="N01"]').click()
    expect(message).to_have_attribute("data-outcome", "invalid_phone", timeout=WAIT_MS)
    expect(message).to_contain_text("手机号不正确")

    page.fill("#phone", "139 0000 7777")
    page.locator('.vote[data-id="N07"]').click()
    expect(message).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    expect(message).to_contain_text("投票成功")
    expect(message).to_contain_text("还可以投 9 票")

    page.locator('.vote[data-id="N07"]').click()
    expect(message).to_have_attribute("data-outcome", "already_voted", timeout=WAIT_MS)
    expect(message).to_contain_text("今天已经为周明亮投过票了")


def test_campaign_page_retries_a_503_with_the_same_key(
    context: Any, site: LiveServer, site_redis: EmbeddedRedis, api: httpx.Client
) -> None:
    page = context.new_page()
    keys: list[str | None] = []
    page.on(
        "request",
        lambda r: keys.append(r.headers.get("idempotency-key")) if r.method == "POST" else None,
    )
    page.goto(site.url + "/")
    expect(page.locator(".vote")).to_have_count(30, timeout=WAIT_MS)
    before = total(api)
    page.fill("#phone", "139 0000 8888")
    message = page.locator("#message")
    pid = site_redis.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # the first try is answered 503
    try:
        page.locator('.vote[data-id="N05"]').click()
        expect(message).to_contain_text("正在自动重试", timeout=WAIT_MS)
    finally:
        os.kill(pid, signal.SIGCONT)
    expect(message).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    assert len(keys) >= 2
    assert len(set(keys)) == 1
    assert keys[0] is not None
    assert len(keys[0]) == 32
    wait_until(lambda: total(api) == before + 1, WAIT_MS / 1000, "the vote counted once")


def test_dashboard_says_unreachable_while_redis_is_down_and_recovers(
    context: Any, site: LiveServer, site_redis: EmbeddedRedis
) -> None:
    page = context.new_page()
    open_dashboard(page, site)
    alert = page.locator("#alert")
    expect(alert).to_be_hidden()
    site_redis.stop()
    try:
        expect(page.locator("body")).to_have_attribute("data-state", "unreachable", timeout=WAIT_MS)
        expect(alert).to_be_visible()
        expect(page.locator("#status-text")).to_have_text("服务暂不可达")
    finally:
        site_redis.start()
    expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(alert).to_be_hidden()


def screenshot_dir(environ: Mapping[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where test_screenshots writes: a temporary directory unless the environment names one."""
    chosen = environ.get(SCREENSHOTS_ENV)
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


def test_screenshots_stay_out_of_the_docs_unless_asked(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    default = screenshot_dir({}, tmp_path_factory)
    assert default.is_relative_to(tmp_path_factory.getbasetemp())
    assert not default.is_relative_to(DOCS_SCREENSHOTS)
    assert screenshot_dir({SCREENSHOTS_ENV: str(tmp_path)}, tmp_path_factory) == tmp_path


def test_screenshots(
    browser: Any,
    site: LiveServer,
    site_redis: EmbeddedRedis,
    site_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    shots = screenshot_dir(os.environ, tmp_path_factory)
    shots.mkdir(parents=True, exist_ok=True)
    client = redis.Redis(unix_socket_path=str(site_redis.socket))
    try:
        client.flushall()
    finally:
        client.close()
    set_up_campaign_now(site_settings, browser_campaign())  # a fresh campaign in Redis
    with httpx.Client(base_url=site.url, timeout=5) as api:
        wide = browser.new_context(viewport=WIDE, locale="zh-CN", timezone_id="Asia/Shanghai")
        phone = browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
        )
        page, small = wide.new_page(), phone.new_page()
        open_dashboard(page, site)
        open_dashboard(small, site)
        # Vote in rounds while the pages watch, so they have seen the pace of votes.
        done = 0
        for round_ in range(1, 5):
            for votes, nominee in zip(RACE, RACE_ORDER, strict=True):
                share = votes * round_ // 4 - votes * (round_ - 1) // 4
                cast(api, f"N{nominee:02d}", share)
                done += share
            for watcher in (page, small):
                expect(watcher.locator("#total")).to_have_attribute(
                    "data-value", str(done), timeout=WAIT_MS
                )
        for watcher in (page, small):
            expect(watcher.locator("#rate")).to_have_attribute(
                "data-measured", "true", timeout=WAIT_MS
            )
        expect(page.locator("#cut")).to_have_attribute("data-tie", "true")
        expect(page.locator('.row[data-status="tie"]')).to_have_count(2)
        page.screenshot(path=shots / "dashboard-wide.png")
        small.screenshot(path=shots / "dashboard-phone.png")

        page.goto(site.url + "/")
        expect(page.locator(".vote")).to_have_count(30, timeout=WAIT_MS)
        page.fill("#phone", "13700001234")
        page.locator('.vote[data-id="N04"]').click()
        expect(page.locator("#message")).to_have_attribute("data-outcome", "accepted")
        page.screenshot(path=shots / "campaign-wide.png")

        small.goto(site.url + "/")
        expect(small.locator(".vote")).to_have_count(30, timeout=WAIT_MS)
        small.fill("#phone", "13700001234")
        small.locator('.vote[data-id="N04"]').click()
        expect(small.locator("#message")).to_have_attribute("data-outcome", "already_voted")
        small.screenshot(path=shots / "campaign-phone.png")
        wide.close()
        phone.close()
