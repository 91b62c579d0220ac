# ruff: noqa: RUF001  (the pages speak Chinese: their sentences use full-width punctuation)
"""The public pages as the city sees them, in a real headless Chromium (Debian's).

Nominee profiles on the campaign page, the dashboard's Chinese conventions
(并列, the award line after ``award_seats``, the tie rule), the wall display at
1920x1080 over a day of the browser's clock, the phone (no message over a
card, full-width digits), the embed kit inside a partner's article (the
README's snippet, on a listed origin and an unlisted one, the verified flow
too), axe-core and each page's weight. Every wait is on a condition.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tests import test_browser
from tests.live_server import LiveServer
from tests.localhost import wait_until
from tests.sms_gateway import SmsGateway
from tests.support import SECRET, SHANGHAI_NOON, set_up_campaign_now
from tests.test_browser import PHONE, WAIT_MS, WIDE, browser_campaign, expect, screenshot_dir
from tests.test_browser_verified import WEBHOOK_SECRET, new_phone, verified_campaign, votes_for
from votesvc.app import create_app
from votesvc.campaign import Campaign, demo_campaign_text, parse_campaign
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

pytestmark = pytest.mark.browser

WALL = {"width": 1920, "height": 1080}
README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPET_SERVICE = "https://vote.example.org"  # the README snippet's placeholder
MAX_PAGE_BYTES = 150 * 1024
SEATS_IN_TIE = 3  # the tie campaign: three award seats

browser = test_browser.browser
site_redis = test_browser.site_redis


class Article:
    """A partner's article on its own origin: the README's embed snippet, pointed at the
    service, plus a recorder of the heights the frames post. Served over real HTTP on
    loopback; ``origin`` is how the listed site reaches it, ``elsewhere`` an unlisted one."""

    def __init__(self) -> None:
        self.service = ""
        article = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/article":  # the browser asks for a favicon
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                query = parse_qs(url.query)
                body = article.page(query["vote"][0], query["board"][0]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.server.server_address[1]
        self.origin = f"http://localhost:{port}"
        self.elsewhere = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def page(self, vote: str, board: str) -> str:
        snippet = readme_snippet()
        snippet = snippet.replace("/embed/vote?nominee=N07", vote)
        snippet = snippet.replace("/embed/board?top=10", board)
        return (
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>合作媒体的文章</title></head><body><h1>他们用双手托起城市</h1>"
            "<p>本报讯 2026年度“最美工匠”人气评选正在进行……</p>"
            + snippet.replace(SNIPPET_SERVICE, self.service)
            + "<script>window.heights = []; window.addEventListener('message', function (e) {"
            " if (e.data && e.data.type === 'votesvc:height') window.heights.push("
            "[e.source === document.querySelectorAll('iframe')[0].contentWindow ? 'vote' : 'board',"
            " e.data.height]); });</script></body></html>"
        )

    def url(self, origin: str, vote: str = "/embed/vote?nominee=N07", board: str = "") -> str:
        return f"{origin}/article?vote={_quote(vote)}&board={_quote(board or '/embed/board?top=5')}"

    def __enter__(self) -> Article:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _quote(text: str) -> str:
    return quote(text, safe="/")


def readme_snippet() -> str:
    """The copy-paste embed snippet of the README's "Embedding" section."""
    text = README.read_text("utf-8")
    section = text[text.index("### Embedding") :]
    found = re.search(r"```html\n(.*?)```", section, re.S)
    assert found, "the README's Embedding section has no html snippet"
    return found.group(1)


@pytest.fixture(scope="module")
def article() -> Iterator[Article]:
    with Article() as running:
        yield running


Serve = Callable[..., LiveServer]


@pytest.fixture(scope="module")
def serve(
    browser: Any, site_redis: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    """Starts a live service for a campaign, on the demo's clock; all stop with the module."""
    servers: list[LiveServer] = []

    def start(campaign: Campaign, real_clock: bool = False, **settings: Any) -> LiveServer:
        config = Settings(
            data_dir=tmp_path_factory.mktemp("public-data"),
            redis_url=site_redis.url,
            secret=SECRET,
            tally_refresh=0.2,
            flush_in_serve=False,
            **settings,
        )
        set_up_campaign_now(config, campaign)
        started = time.time()
        clock = time.time if real_clock else (lambda: SHANGHAI_NOON + time.time() - started)
        servers.append(LiveServer(create_app(config, campaign=campaign, clock=clock)).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def site(serve: Serve, article: Article) -> LiveServer:
    """The demo campaign (photos, titles, stories), which the article's site may frame."""
    server = serve(browser_campaign(), embed_origins=(article.origin,))
    article.service = server.url
    return server


def demo_campaign(campaign_id: str, seats: int | None = None) -> Campaign:
    """The demo campaign under another id (its own votes), ``seats`` award seats."""
    text = demo_campaign_text().replace('id = "craftsman-2026"', f'id = "{campaign_id}"', 1)
    text = text.replace("ip_limit = 600 ", "ip_limit = 100000 ")
    if seats is not None:
        text = text.replace("[rules]\n", f"[rules]\naward_seats = {seats}\n")
    return parse_campaign(text)


@pytest.fixture(scope="module")
def tie_site(serve: Serve) -> LiveServer:
    """The demo's nominees with three award seats, no votes yet."""
    return serve(demo_campaign("craftsman-tie", SEATS_IN_TIE))


def new_context(browser: Any, viewport: dict[str, int], **more: Any) -> Any:
    options: dict[str, Any] = {"locale": "zh-CN", "timezone_id": "Asia/Shanghai"}
    if viewport == PHONE:
        options.update(is_mobile=True, has_touch=True)
    return browser.new_context(viewport=viewport, **options, **more)


@pytest.fixture
def wide(browser: Any) -> Iterator[Any]:
    context = new_context(browser, WIDE)
    yield context
    context.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = new_context(browser, PHONE)
    yield context
    context.close()


_phones = iter(range(20_000_000, 30_000_000))


def cast(server: LiveServer, nominee: str, votes: int = 1) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as api:
        for _ in range(votes):
            response = api.post(
                "/v1/votes", json={"nominee": nominee, "phone": f"139{next(_phones):08d}"}
            )
            assert response.status_code == 201, response.text


def total(server: LiveServer) -> int:
    """The total with every vote cast so far: the first tally read after the one this
    call sees first (that one may have been read before the last vote was counted)."""
    first = httpx.get(f"{server.url}/v1/tally", timeout=5).json()
    tally: dict[str, Any] = first

    def newer() -> bool:
        nonlocal tally
        tally = httpx.get(f"{server.url}/v1/tally", timeout=5).json()
        return bool(tally["as_of"] != first["as_of"])

    wait_until(newer, WAIT_MS / 1000, "a tally read after the last vote")
    value: int = tally["total"]
    return value


def open_page(context: Any, url: str) -> Any:
    page = context.new_page()
    page.goto(url)
    if "/dashboard" in url or "/embed/board" in url:
        expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        expect(page.locator("#board .row").first).to_be_visible(timeout=WAIT_MS)
    elif "/results" in url:
        expect(page.locator("main")).to_be_visible(timeout=WAIT_MS)
    else:
        expect(page.locator("#nominees")).to_have_attribute("aria-busy", "false", timeout=WAIT_MS)
    return page


def _overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


# ---- nominee profiles ------------------------------------------------------------------


def test_profiles_show_photos_titles_and_open_the_story(phone: Any, site: LiveServer) -> None:
    page = open_page(phone, site.url + "/")
    n01 = page.locator('.card[data-id="N01"]')
    photo = n01.locator(".avatar img")
    expect(photo).to_have_attribute("src", re.compile(r"^/media/N01-[0-9a-f]{16}\.webp$"))
    photo.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 480", arg=photo.element_handle()
    )
    expect(n01.locator(".title")).to_have_text("特级技师")
    expect(n01.locator(".employer")).to_have_text("华东精密机床厂")

    # No photo: the name's first character stays; no story: nothing to open.
    n03 = page.locator('.card[data-id="N03"]')
    expect(n03.locator(".avatar")).to_have_text("赵")
    expect(n03.locator(".avatar img")).to_have_count(0)
    expect(n03.locator("button.profile")).to_have_count(0)
    expect(page.locator('.card[data-id="N13"] .avatar')).to_have_text("蒋")  # a story, no photo

    story = n01.locator(".bio")
    profile = n01.locator("button.profile")
    expect(story).to_be_hidden()
    expect(profile).to_have_attribute("aria-expanded", "false")
    profile.tap()
    expect(story).to_be_visible()
    expect(story).to_contain_text("在数控车床前干了二十六年")
    expect(profile).to_have_attribute("aria-expanded", "true")
    expect(profile.locator(".more")).to_have_text("收起简介")
    profile.tap()
    expect(story).to_be_hidden()


# ---- the dashboard's conventions --------------------------------------------------------


def test_no_contest_while_nobody_has_votes_then_a_tie_across_the_line(
    wide: Any, tie_site: LiveServer
) -> None:
    page = open_page(wide, tie_site.url + "/dashboard")
    assert total(tie_site) == 0
    expect(page.locator("#subtitle")).to_have_text("实时榜单 · 得票前 3 名获“最受欢迎”奖")
    expect(page.locator("#cut-label")).to_have_text("获奖线（第 3 名）")
    expect(page.locator("#cut-votes")).to_have_text("暂无")
    expect(page.locator("#leader")).to_have_text("暂无")
    cut = page.locator("#cut")
    expect(cut.locator(".cut-label")).to_have_text("获奖线 · 前 3 名（暂定）")  # no contest text
    expect(cut.locator(".cut-rule")).to_have_text("票数相同时，先达到这一票数的候选人排名靠前。")
    expect(page.locator(".row .rank")).to_have_text([""] * 30)  # no rank while nobody has votes
    expect(page.locator(".row .badge:visible")).to_have_count(0)
    # The per-minute card: an empty chart of ten slots, no stray dash.
    expect(page.locator("#spark > span")).to_have_count(10)
    heights = page.eval_on_selector_all("#spark i", "fills => fills.map(f => f.offsetHeight)")
    assert heights == [0] * 10
    assert "—" not in page.locator(".stats").inner_text()

    # N01 5, N02 4, N03 and N04 3 each: the third seat is shared by two.
    for nominee, votes in (("N01", 5), ("N02", 4), ("N03", 3), ("N04", 3), ("N05", 1)):
        cast(tie_site, nominee, votes)
    expect(page.locator("#total")).to_have_attribute("data-value", "16", timeout=WAIT_MS)
    ranks = page.locator(".row .rank")
    expect(ranks.nth(0)).to_have_text("1")
    expect(ranks.nth(1)).to_have_text("2")
    expect(ranks.nth(2)).to_have_text("并列第3")
    expect(ranks.nth(3)).to_have_text("并列第3")
    expect(ranks.nth(4)).to_have_text("5")
    expect(page.locator('.row[data-status="tie"]')).to_have_count(2)
    expect(page.locator(".row .badge:visible")).to_have_text(["同票待定"] * 2)
    expect(cut).to_have_attribute("data-tie", "true")
    expect(cut.locator(".cut-label")).to_have_text(
        "获奖线 · 前 3 名（暂定） · 并列第 3 名的 2 人同为 3 票，争最后 1 个名额"
    )
    expect(cut.locator(".cut-rule")).to_have_text("票数相同时，先达到这一票数的候选人排名靠前。")
    # The line right after the tied rows: the 4th row, then the line, then the 5th.
    order = page.eval_on_selector_all(
        "#board > li", "items => items.map(i => i.id || i.dataset.id)"
    )
    assert order[:6] == ["N01", "N02", "N03", "N04", "cut", "N05"]
    expect(page.locator("#cut-votes")).to_have_text("3 票")
    page.wait_for_function("document.querySelector('#spark span:last-child i').offsetHeight > 0")


# ---- the wall ------------------------------------------------------------------------


def test_the_wall_holds_the_award_places_and_stays_bounded_over_a_day(
    browser: Any, site: LiveServer
) -> None:
    cast(site, "N07", 3)  # someone leads
    context = new_context(browser, WALL)
    page = context.new_page()
    page.clock.install()
    try:
        page.goto(site.url + "/dashboard?display=wall")
        expect(page.locator("body")).to_have_attribute("data-display", "wall")
        expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        expect(page.locator("#board .row").first).to_be_visible(timeout=WAIT_MS)
        assert page.evaluate("[window.innerWidth, window.innerHeight]") == [1920, 1080]
        # No controls, nothing to scroll.
        assert page.locator("button:visible, a:visible, input:visible").count() == 0
        assert page.evaluate(
            "document.documentElement.scrollHeight <= window.innerHeight"
            " && document.documentElement.scrollWidth <= window.innerWidth"
        )
        check_wall(page, turns=True)
        first_turn = visible_ids(page, "#board-rest")
        page.clock.run_for(10_500)  # the others take their turn
        wait_until(lambda: visible_ids(page, "#board-rest") != first_turn, 5, "the next page")
        check_wall(page, turns=True)

        cdp = context.new_cdp_session(page)
        before_nodes, before_heap = dom_and_heap(page, cdp)
        for hour in range(24):
            before = total(site)
            cast(site, f"N{hour % 30 + 1:02d}", 2)  # updates keep flowing
            expect(page.locator("#total")).to_have_attribute(
                "data-value", str(before + 2), timeout=WAIT_MS
            )
            page.clock.run_for(60_000)  # a minute of timers, each fired
            page.clock.fast_forward("59:00")  # the rest of the hour
        check_wall(page)
        after_nodes, after_heap = dom_and_heap(page, cdp)
        assert after_nodes <= before_nodes + 5, (before_nodes, after_nodes)
        assert after_heap <= before_heap * 1.5 + 1_000_000, (before_heap, after_heap)
        samples = page.evaluate("document.querySelectorAll('#board .row, #board-rest .row').length")
        assert samples == 30
    finally:
        context.close()


def visible_ids(page: Any, board: str) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        f"{board} > .row:not([hidden])", "rows => rows.map(r => r.dataset.id)"
    )
    return ids


def check_wall(page: Any, turns: bool = False) -> None:
    """Rows at least 28 px, the award places first on the left, the rest (in pages, with
    ``turns``) on the right, and nothing off the screen."""
    rows = page.locator(".row:visible")
    heights = page.eval_on_selector_all(
        ".row:not([hidden])", "rows => rows.map(r => r.getBoundingClientRect().height)"
    )
    assert heights, "no row on the wall"
    assert min(heights) >= 28, heights
    tally = page.url.split("/dashboard")[0] + "/v1/tally"

    def in_rank_order() -> bool:  # the page may be a push behind the API: wait for it
        held = visible_ids(page, "#board")
        ranked = [row["id"] for row in httpx.get(tally).json()["nominees"]]
        return held == ranked[: len(held)]

    wait_until(in_rank_order, WAIT_MS / 1000, "the left column is the first places")
    held = visible_ids(page, "#board")
    assert len(held) >= 10
    shown = held + visible_ids(page, "#board-rest")
    assert len(shown) < 30 or not turns, "all 30 fit: nothing takes turns"
    for index in range(rows.count()):
        box = rows.nth(index).bounding_box()
        assert box["y"] + box["height"] <= 1080, f"a row runs off the screen: {box}"


def dom_and_heap(page: Any, cdp: Any) -> tuple[int, int]:
    cdp.send("HeapProfiler.collectGarbage")
    nodes: int = page.evaluate("document.getElementsByTagName('*').length")
    heap: int = cdp.send("Runtime.getHeapUsage")["usedSize"]
    return nodes, heap


# ---- the phone ------------------------------------------------------------------------


def test_on_a_phone_a_full_width_number_votes_and_no_message_covers_a_card(
    phone: Any, site: LiveServer
) -> None:
    page = open_page(phone, site.url + "/")
    sent: list[Any] = []
    page.on(
        "request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/v1/votes") else None
    )
    page.fill(
        "#phone", "１３９\u3000００１３\u3000８０００"
    )  # a Chinese keyboard's digits and spaces
    page.locator('.vote[data-id="N30"]').tap()  # the last card, at the foot of the page
    message = page.locator("#message")
    expect(message).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    assert sent == [{"nominee": "N30", "phone": "13900138000"}]
    expect(page.locator('.card[data-id="N30"] #message')).to_have_count(1)
    check_no_cover(page)

    page.locator('.vote[data-id="N01"]').tap()
    expect(message).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    page.locator('.card[data-id="N01"] button.profile').tap()  # the story opens above it
    check_no_cover(page)
    page.fill("#phone", "")
    page.locator('.vote[data-id="N02"]').tap()
    expect(message).to_have_attribute("data-outcome", "missing_phone")
    check_no_cover(page)


def check_no_cover(page: Any) -> None:
    """The message sits inside its card: over no other card, no field and no button."""
    message = page.locator("#message").bounding_box()
    assert message is not None
    own = page.locator(".card:has(#message)").get_attribute("data-id")
    for selector in (".card", "input", "button"):
        found = page.locator(selector)
        for index in range(found.count()):
            item = found.nth(index)
            if selector == ".card" and item.get_attribute("data-id") == own:
                continue
            box = item.bounding_box()
            if box is not None:
                assert not _overlaps(message, box), f"the message covers {selector} {box}"
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways ({width})"


def test_on_a_phone_the_trade_chips_show_that_they_scroll(phone: Any, site: LiveServer) -> None:
    page = open_page(phone, site.url + "/dashboard")
    chips = page.locator("#filters")
    nav = page.locator("nav.filters")
    expect(chips.locator(".chip")).to_have_count(11, timeout=WAIT_MS)
    assert page.evaluate("c => c.scrollWidth > c.clientWidth", chips.element_handle())
    expect(nav).to_have_attribute("data-more", "end")
    fade = "n => getComputedStyle(n, '::after').opacity"
    page.wait_for_function(f"({fade})(document.querySelector('nav.filters')) === '1'")
    chips.evaluate("c => c.scrollTo(c.scrollWidth, 0)")
    expect(nav).to_have_attribute("data-more", "start")
    page.wait_for_function(f"({fade})(document.querySelector('nav.filters')) === '0'")


# ---- the embed kit -----------------------------------------------------------------------


def test_the_embed_kit_works_in_a_listed_article_and_reports_its_height(
    wide: Any, site: LiveServer, article: Article
) -> None:
    page = wide.new_page()
    page.goto(article.url(article.origin))
    vote = page.frame_locator("iframe").nth(0)
    board = page.frame_locator("iframe").nth(1)
    expect(vote.locator(".card")).to_have_count(1, timeout=WAIT_MS)
    expect(vote.locator(".card .name")).to_have_text("周明亮")
    expect(board.locator(".row")).to_have_count(5, timeout=WAIT_MS)
    page.wait_for_function("window.heights.some(h => h[0] === 'vote')", timeout=WAIT_MS)
    page.wait_for_function("window.heights.some(h => h[0] === 'board')", timeout=WAIT_MS)
    fits(page)

    posted = len(page.evaluate("window.heights"))
    vote.locator("#phone").fill("13900139001")
    vote.locator(".vote").click()
    expect(vote.locator("#message")).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    page.wait_for_function(f"window.heights.length > {posted}", timeout=WAIT_MS)  # it grew
    fits(page)
    vote.locator("button.profile").click()  # the story opens: taller again
    page.wait_for_function(f"window.heights.length > {posted + 1}", timeout=WAIT_MS)
    fits(page)

    trade = wide.new_page()
    trade.goto(article.url(article.origin, vote="/embed/vote?trade=焊工"))
    names = trade.frame_locator("iframe").nth(0).locator(".card .name")
    expect(names).to_have_text(["陈海涛", "刘晓东", "孙丽华"], timeout=WAIT_MS)


def fits(page: Any) -> None:
    """Each frame is as tall as its page says, and that is its document's height."""

    def settled() -> bool:
        for frame, element in zip(page.frames[1:], page.locator("iframe").all(), strict=True):
            needed = frame.evaluate(
                "Math.ceil(document.documentElement.getBoundingClientRect().height)"
            )
            if abs(element.bounding_box()["height"] - needed) > 1:
                return False
        return True

    wait_until(settled, WAIT_MS / 1000, "the frames fit their pages")


def test_an_unlisted_site_cannot_frame_the_embed_pages(
    wide: Any, site: LiveServer, article: Article
) -> None:
    for path in ("/embed/vote", "/embed/board", "/"):
        response = httpx.get(site.url + path)
        policy = response.headers["content-security-policy"]
        assert policy == (
            f"frame-ancestors {article.origin}" if "embed" in path else "frame-ancestors 'none'"
        )
    page = wide.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "frame-ancestors" in m.text else None)
    page.goto(article.url(article.elsewhere))
    wait_until(lambda: len(blocked) == 2, WAIT_MS / 1000, "both frames refused")
    assert all(not frame.url.startswith(site.url) for frame in page.frames[1:])
    assert page.evaluate("window.heights") == []


def test_the_embed_runs_the_verified_flow(
    wide: Any, serve: Serve, article: Article, tmp_path: Path
) -> None:
    with SmsGateway() as gateway:
        campaign = verified_campaign("verified-embed")
        server = serve(
            campaign,
            real_clock=True,
            embed_origins=(article.origin,),
            sms_sender=f"webhook:{gateway.url}",
            sms_webhook_secret=WEBHOOK_SECRET,
        )
        service, article.service = article.service, server.url
        try:
            direct = open_page(wide, server.url + "/embed/vote?nominee=N12")  # the code step
            assert_nothing_serious(direct)
            page = wide.new_page()
            page.goto(article.url(article.origin, vote="/embed/vote?nominee=N12"))
            frame = page.frame_locator("iframe").nth(0)
            expect(frame.locator(".card")).to_have_count(1, timeout=WAIT_MS)
            frame.locator(".vote").click()  # before verifying: the code step asks first
            expect(frame.locator("#message")).to_have_attribute("data-outcome", "verify_first")
            number = new_phone()
            frame.locator("#phone").fill(number)
            frame.locator("#send-code").click()
            step = frame.locator("#step")
            expect(step).to_have_attribute("data-outcome", "sent", timeout=WAIT_MS)
            frame.locator("#code").fill(gateway.last_code(number))
            frame.locator("#check-code").click()
            expect(step).to_have_attribute("data-outcome", "verified", timeout=WAIT_MS)
            message = frame.locator("#message")
            expect(message).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
            expect(message).to_contain_text("投票成功！已为卫长青投上一票")
            with httpx.Client(base_url=server.url) as api:
                wait_until(lambda: votes_for(api, "N12") == 1, WAIT_MS / 1000, "the vote counted")
        finally:
            article.service = service


# ---- accessibility and weight -------------------------------------------------------

PAGES = {
    "campaign": ("/", WIDE),
    "campaign-phone": ("/", PHONE),
    "dashboard": ("/dashboard", WIDE),
    "wall": ("/dashboard?display=wall", WALL),
    "embed-vote": ("/embed/vote?nominee=N07", PHONE),
    "embed-board": ("/embed/board?top=10", WIDE),
    "results": ("/results", PHONE),  # the result page, where the app has one
}


@pytest.mark.parametrize("name", PAGES)
def test_axe_finds_nothing_serious_and_the_page_is_light(
    browser: Any, site: LiveServer, name: str
) -> None:
    path, viewport = PAGES[name]
    if httpx.get(site.url + path).status_code == 404:
        pytest.skip(f"this version has no {path} page")
    context = new_context(browser, viewport)
    try:
        page = open_page(context, site.url + path)
        if name == "campaign":  # a story open, a message shown: their parts are checked too
            page.locator('.card[data-id="N01"] button.profile').click()
            page.locator('.vote[data-id="N02"]').click()
            expect(page.locator("#message")).to_have_attribute("data-outcome", "missing_phone")
        assert_nothing_serious(page)
        weight = page_weight(page, site)
        assert weight < MAX_PAGE_BYTES, f"{name} weighs {weight} bytes"
        print(f"{name}: {weight / 1024:.1f} KB without photos")
    finally:
        context.close()


def assert_nothing_serious(page: Any) -> None:
    """axe-core (as axe-playwright-python bundles it) finds no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    serious = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []


def page_weight(page: Any, site: LiveServer) -> int:
    """Bytes the page loaded (headers and bodies), photos left out; the tally stream,
    which never ends, counted as its first event (the tally)."""
    entries: list[dict[str, Any]] = page.evaluate(
        """() => performance.getEntriesByType("navigation")
            .concat(performance.getEntriesByType("resource"))
            .map(e => ({name: e.name, size: e.transferSize}))"""
    )
    weight: int = sum(e["size"] for e in entries if "/media/" not in e["name"])
    assert all(e["size"] > 0 for e in entries), entries  # nothing came from a cache
    if page.evaluate("document.body.dataset.page") in ("dashboard", "embed-board"):
        weight += len(httpx.get(site.url + "/v1/tally").content)
    return weight


def test_every_control_shows_the_keyboard_focus(phone: Any, site: LiveServer) -> None:
    page = open_page(phone, site.url + "/")
    for selector in ("#phone", ".vote", "button.profile", ".to-dashboard"):
        control = page.locator(selector).first
        control.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # focus from the keyboard: :focus-visible
        expect(control).to_be_focused()
        style = control.evaluate(
            "c => { const s = getComputedStyle(c); return [s.outlineStyle, s.borderColor]; }"
        )
        assert style[0] != "none" or selector == "#phone", f"{selector}: no focus ring ({style})"
    board = open_page(phone, site.url + "/dashboard")
    chip = board.locator(".chip").first
    chip.focus()
    board.keyboard.press("Shift+Tab")
    board.keyboard.press("Tab")
    expect(chip).to_be_focused()
    assert chip.evaluate("c => getComputedStyle(c).outlineStyle") != "none"


# ---- screenshots --------------------------------------------------------------------


def test_screenshots_of_the_public_pages(
    browser: Any, serve: Serve, article: Article, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shots = screenshot_dir(os.environ, tmp_path_factory)
    shots.mkdir(parents=True, exist_ok=True)
    # A fresh campaign with the race of the dashboard's screenshots: a tie across the line.
    site = serve(demo_campaign("craftsman-shots"), embed_origins=(article.origin,))
    wall = new_context(browser, WALL)
    page = open_page(wall, site.url + "/dashboard?display=wall")
    for votes, nominee in zip(test_browser.RACE, test_browser.RACE_ORDER, strict=True):
        cast(site, f"N{nominee:02d}", votes)  # while the wall watches: it sees the pace
    expect(page.locator("#total")).to_have_attribute(
        "data-value", str(total(site)), timeout=WAIT_MS
    )
    expect(page.locator("#cut")).to_have_attribute("data-tie", "true")
    expect(page.locator("#rate")).to_have_attribute("data-measured", "true", timeout=WAIT_MS)
    page.screenshot(path=shots / "dashboard-wall.png")
    wall.close()
    service, article.service = article.service, site.url
    try:
        take_screenshots(browser, site, article, shots)
    finally:
        article.service = service


def take_screenshots(browser: Any, site: LiveServer, article: Article, shots: Path) -> None:
    small = new_context(browser, PHONE, device_scale_factor=2)
    page = open_page(small, site.url + "/dashboard")
    expect(page.locator("#cut")).to_have_attribute("data-tie", "true", timeout=WAIT_MS)
    page.locator("#cut").evaluate("c => c.scrollIntoView({block: 'center'})")
    page.screenshot(path=shots / "dashboard-tie-phone.png")

    page = open_page(small, site.url + "/")
    page.locator('.card[data-id="N07"] button.profile').tap()
    page.fill("#phone", "13700001234")
    page.locator('.vote[data-id="N07"]').tap()
    expect(page.locator("#message")).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    page.locator('.card[data-id="N07"]').evaluate("c => c.scrollIntoView({block: 'center'})")
    page.wait_for_function(
        "[...document.querySelectorAll('.avatar img')]"
        ".filter(i => i.getBoundingClientRect().top < innerHeight).every(i => i.complete)"
    )
    page.screenshot(path=shots / "campaign-profile-phone.png")

    page = small.new_page()
    page.goto(article.url(article.origin, vote="/embed/vote?nominee=N04"))
    expect(page.frame_locator("iframe").nth(0).locator(".card")).to_have_count(1, timeout=WAIT_MS)
    fits(page)
    page.screenshot(path=shots / "embed-vote-phone.png")
    small.close()

    laptop = new_context(browser, WIDE)
    page = laptop.new_page()
    page.goto(
        article.url(article.origin, vote="/embed/vote?trade=钳工", board="/embed/board?top=10")
    )
    expect(page.frame_locator("iframe").nth(1).locator(".row")).to_have_count(10, timeout=WAIT_MS)
    fits(page)
    page.screenshot(path=shots / "embed-article.png", full_page=True)
    laptop.close()
