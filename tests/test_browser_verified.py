# ruff: noqa: RUF001  (the page speaks Chinese: its sentences use full-width punctuation)
"""The campaign page where votes are verified, in a real headless Chromium.

The service runs for real (uvicorn in a thread, its own Redis) with the webhook
SMS sender pointed at a small HTTP server that records the codes
(tests/sms_gateway.py); the page solves the real proof of work in its worker.
Every test looks at the page as a phone does (390x844). The service runs on
the real clock, as the page does: it compares token expiries with its own.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests import test_browser
from tests.live_server import LiveServer
from tests.localhost import wait_until
from tests.sms_gateway import SmsGateway
from tests.support import SECRET, phone, set_up_campaign_now
from tests.test_browser import PHONE, WAIT_MS, expect, screenshot_dir
from votesvc.app import create_app
from votesvc.campaign import Campaign, demo_campaign_text, parse_campaign
from votesvc.phones import hash_phone
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings
from votesvc.tokens import VoterTokens

pytestmark = pytest.mark.browser

WEBHOOK_SECRET = b"webhook-secret-of-the-browser-tests-0123"
PARTNER_KEY = b"p" * 32
SHANGHAI = ZoneInfo("Asia/Shanghai")
VOTER_KEY = "votesvc.voter"  # the page's sessionStorage key

_numbers = itertools.count(1)


def new_phone() -> str:
    """A phone no other test in this module uses (its codes and votes are its own)."""
    return phone(next(_numbers))


def verified_campaign(campaign_id: str, **verification: Any) -> Campaign:
    """The SMS demo campaign (its Chinese names), open now, with a quick proof of work.

    ``verification``: keys of its ``[verification]`` table to change. The shipped
    window stays while it holds a month ahead (the screenshots show it), else
    it moves to around now.
    """
    text = demo_campaign_text("demo-sms.toml")
    changes = {
        "id": f'"{campaign_id}"',
        "ip_limit": "100000",  # every test votes from 127.0.0.1
        "pow_max_number": "2000",
        "verifies_per_ip_per_hour": "1000",
        **{key: str(value) for key, value in verification.items()},
    }
    shipped = parse_campaign(text, source="demo-sms")
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    if not shipped.opens_at <= now < shipped.closes_at - timedelta(days=30):
        changes["opens_at"] = f'"{(now - timedelta(days=1)).isoformat()}"'
        changes["closes_at"] = f'"{(now + timedelta(days=30)).isoformat()}"'
    for key, value in changes.items():
        text, found = re.subn(rf"^{key} = \S+", f"{key} = {value}", text, count=1, flags=re.M)
        assert found == 1, f"{key} is not in demo-sms.toml"
    return parse_campaign(text, source="demo-sms")


# The unverified page's fixtures: one Chromium and one Redis for this module too.
browser = test_browser.browser
site_redis = test_browser.site_redis


@pytest.fixture(scope="module")
def gateway() -> Iterator[SmsGateway]:
    with SmsGateway() as running:
        yield running


@dataclass(frozen=True)
class Site:
    server: LiveServer
    campaign: Campaign

    @property
    def url(self) -> str:
        return self.server.url


Serve = Callable[[Campaign], Site]


@pytest.fixture(scope="module")
def serve(
    browser: Any,
    site_redis: EmbeddedRedis,
    gateway: SmsGateway,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Serve]:
    """Starts a live service for a campaign (on the real clock); all stop with the module."""
    servers: list[LiveServer] = []

    def start(campaign: Campaign) -> Site:
        verification = campaign.verification
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("verified-data"),
            redis_url=site_redis.url,
            secret=SECRET,
            tally_refresh=0.2,
            flush_in_serve=False,
            sms_sender=f"webhook:{gateway.url}" if verification.sms else None,
            sms_webhook_secret=WEBHOOK_SECRET,
            partner_keys=tuple((name, PARTNER_KEY) for name in verification.partners),
        )
        set_up_campaign_now(settings, campaign)
        servers.append(LiveServer(create_app(settings, campaign=campaign)).start())
        return Site(servers[-1], campaign)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def site(serve: Serve) -> Site:
    """The SMS campaign as shipped but for the quick proof of work: codes again after 60 s."""
    return serve(verified_campaign("verified-browser"))


@pytest.fixture(scope="module")
def quick_site(serve: Serve) -> Site:
    """The same with a 3 s wait before another code."""
    return serve(verified_campaign("verified-quick", resend_seconds=3))


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    yield ctx
    ctx.close()


@pytest.fixture
def api(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=5) as client:
        yield client


def open_page(context: Any, site: Site) -> Any:
    page = context.new_page()
    page.goto(site.url + "/")
    expect(page.locator(".vote")).to_have_count(30, timeout=WAIT_MS)
    return page


def step(page: Any) -> Any:
    """The line under the code step that says what happened there."""
    return page.locator("#step")


def send_code(page: Any, gateway: SmsGateway, number: str, typed: str | None = None) -> str:
    """Type the number (as ``typed``), ask for a code (proof of work included); the code
    the SMS carried."""
    page.fill("#phone", typed or number)
    page.locator("#send-code").click()
    expect(step(page)).to_have_attribute("data-outcome", "sent", timeout=WAIT_MS)
    return gateway.last_code(number)


def verify(page: Any, gateway: SmsGateway, number: str) -> None:
    """From the number to a verified voter: code sent, typed, checked."""
    code = send_code(page, gateway, number)
    page.fill("#code", code)
    page.locator("#check-code").click()
    expect(step(page)).to_have_attribute("data-outcome", "verified", timeout=WAIT_MS)


def stored_voter(page: Any) -> dict[str, Any] | None:
    voter: dict[str, Any] | None = page.evaluate(
        f"JSON.parse(sessionStorage.getItem('{VOTER_KEY}'))"
    )
    return voter


def votes_for(api: httpx.Client, nominee: str) -> int:
    for row in api.get("/v1/tally").json()["nominees"]:
        if row["id"] == nominee:
            votes: int = row["votes"]
            return votes
    raise AssertionError(f"{nominee} is not in the tally")


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def full_width(code: str) -> str:
    """``code`` as a Chinese keyboard may type it: full-width digits, with a space."""
    wide = "".join(chr(ord(digit) + 0xFEE0) for digit in code)
    return f"{wide[:3]} {wide[3:]}"


def test_from_the_number_to_a_counted_vote(
    context: Any, site: Site, gateway: SmsGateway, api: httpx.Client
) -> None:
    page = open_page(context, site)
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r) if "/v1/" in r.url else None)
    workers: list[str] = []
    page.on("worker", lambda worker: workers.append(worker.url))
    expect(page.locator("#phone")).to_be_visible()
    expect(page.locator("#code")).to_have_attribute("inputmode", "numeric")
    expect(page.locator("#code")).to_have_attribute("autocomplete", "one-time-code")
    before = votes_for(api, "N07")
    number = new_phone()

    code = send_code(page, gateway, number, f"{number[:3]} {number[3:7]} {number[7:]}")
    expect(step(page)).to_contain_text(f"验证码已发送至 {number[:3]} {number[3:7]} {number[7:]}")
    expect(step(page)).to_contain_text("5 分钟内有效")
    assert [worker.rsplit("/", 1)[1] for worker in workers] == ["pow-worker.js"]
    otp = [r for r in requests if r.url.endswith("/v1/otp")]
    assert len(otp) == 1
    assert set(otp[0].post_data_json) == {"phone", "pow"}
    assert otp[0].post_data_json["phone"] == number

    page.fill("#code", code)
    page.locator("#check-code").click()
    expect(step(page)).to_have_attribute("data-outcome", "verified", timeout=WAIT_MS)
    expect(page.locator("#code")).to_be_hidden()
    expect(page.locator("#send-code")).to_be_hidden()
    voter = stored_voter(page)
    assert voter is not None
    assert voter["phone"] == number
    assert voter["expires"] > time.time() * 1000 + 86_000_000  # about a day on this clock

    page.locator('.vote[data-id="N07"]').click()
    message = page.locator("#message")
    expect(message).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    expect(message).to_contain_text("投票成功！已为周明亮投上一票")
    expect(message).to_contain_text("还可以投 9 票")
    expect(page.locator('.vote[data-id="N07"]')).to_have_text("今日已投")
    cast = [r for r in requests if r.url.endswith("/v1/votes")]
    assert len(cast) == 1
    assert cast[0].headers["authorization"] == f"Bearer {voter['token']}"
    assert cast[0].post_data_json == {"nominee": "N07"}
    wait_until(lambda: votes_for(api, "N07") == before + 1, WAIT_MS / 1000, "the vote counted")


def test_a_vote_before_verifying_asks_for_the_code_then_counts(
    context: Any, site: Site, gateway: SmsGateway, api: httpx.Client
) -> None:
    page = open_page(context, site)
    before = votes_for(api, "N12")
    page.locator('.vote[data-id="N12"]').click()
    message = page.locator("#message")
    expect(message).to_have_attribute("data-outcome", "verify_first")
    expect(message).to_contain_text("投票前请先验证手机号")
    expect(page.locator("#phone")).to_be_focused()

    verify(page, gateway, new_phone())  # then the vote it was asked for goes in by itself

    expect(message).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    expect(page.locator('.vote[data-id="N12"]')).to_have_text("今日已投")
    wait_until(lambda: votes_for(api, "N12") == before + 1, WAIT_MS / 1000, "the vote counted")


def test_a_wrong_code_then_the_right_one(context: Any, site: Site, gateway: SmsGateway) -> None:
    page = open_page(context, site)
    page.fill("#phone", "12345")
    page.locator("#send-code").click()
    expect(step(page)).to_have_attribute("data-outcome", "invalid_phone")
    expect(step(page)).to_contain_text("手机号不正确")

    number = new_phone()
    code = send_code(page, gateway, number)
    page.locator("#check-code").click()  # nothing typed yet
    expect(step(page)).to_have_text("请填写短信里的 6 位数字验证码。")
    page.fill("#code", wrong(code))
    page.locator("#check-code").click()
    expect(step(page)).to_have_attribute("data-outcome", "invalid_code", timeout=WAIT_MS)
    expect(step(page)).to_have_text("验证码错误，还可以再试 4 次。")
    assert stored_voter(page) is None

    page.fill("#code", full_width(code))  # full-width digits and a space: the code all the same
    expect(page.locator("#code")).to_have_value(code)
    page.locator("#check-code").click()
    expect(step(page)).to_have_attribute("data-outcome", "verified", timeout=WAIT_MS)
    expect(page.locator("#message")).to_have_text("验证成功！现在可以投票了。")


def test_a_pasted_sms_gives_its_code(context: Any, site: Site, gateway: SmsGateway) -> None:
    page = open_page(context, site)
    code = send_code(page, gateway, new_phone())
    sms = f"【2026最美工匠】您的验证码是{full_width(code).replace(' ', '')}，5分钟内有效。"
    page.locator("#code").evaluate(
        """(field, text) => {
            const data = new DataTransfer();
            data.setData("text/plain", text);
            field.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true,
                                                             cancelable: true}));
        }""",
        sms,
    )
    expect(page.locator("#code")).to_have_value(code)
    page.locator("#check-code").click()
    expect(step(page)).to_have_attribute("data-outcome", "verified", timeout=WAIT_MS)


def test_the_countdown_blocks_a_second_code(context: Any, site: Site, gateway: SmsGateway) -> None:
    page = open_page(context, site)
    number = new_phone()
    sent_before = len(gateway.deliveries)
    send_code(page, gateway, number)
    send = page.locator("#send-code")
    expect(send).to_be_disabled()
    expect(send).to_have_text(re.compile(r"^(60|5\d) 秒后可重新获取$"))
    send.click(force=True)  # a tap on the greyed button does nothing
    expect(send).to_have_text(re.compile(r"^\d+ 秒后可重新获取$"))
    assert len(gateway.deliveries) == sent_before + 1

    # A reload forgets the countdown; the service's Retry-After brings it back.
    page.reload()
    expect(page.locator(".vote")).to_have_count(30, timeout=WAIT_MS)
    page.fill("#phone", number)
    expect(send).to_have_text("获取验证码")
    send.click()
    expect(step(page)).to_have_attribute("data-outcome", "rate_limited", timeout=WAIT_MS)
    expect(step(page)).to_contain_text("刚刚已经给这个手机号发过验证码，请查看短信")
    expect(send).to_be_disabled()
    expect(send).to_have_text(re.compile(r"^[1-6]?\d 秒后可重新获取$"))
    assert len(gateway.deliveries) == sent_before + 1


def test_another_code_once_the_countdown_ends(
    context: Any, quick_site: Site, gateway: SmsGateway
) -> None:
    page = open_page(context, quick_site)
    number = new_phone()
    first = send_code(page, gateway, number)
    send = page.locator("#send-code")
    expect(send).to_be_enabled(timeout=WAIT_MS)
    expect(send).to_have_text("重新获取验证码")
    sent_before = len(gateway.deliveries)
    send.click()
    expect(send).to_be_disabled(timeout=WAIT_MS)
    wait_until(lambda: len(gateway.deliveries) == sent_before + 1, WAIT_MS / 1000, "a new code")
    second = gateway.last_code(number)
    page.fill("#code", first)  # the new code replaced the first
    page.locator("#check-code").click()
    if first != second:
        expect(step(page)).to_have_attribute("data-outcome", "invalid_code", timeout=WAIT_MS)
    page.fill("#code", second)
    page.locator("#check-code").click()
    expect(step(page)).to_have_attribute("data-outcome", "verified", timeout=WAIT_MS)


def test_a_reload_keeps_the_token_a_new_tab_does_not(
    context: Any, site: Site, gateway: SmsGateway, api: httpx.Client
) -> None:
    page = open_page(context, site)
    number = new_phone()
    verify(page, gateway, number)
    token = stored_voter(page)

    page.reload()
    expect(page.locator(".vote")).to_have_count(30, timeout=WAIT_MS)
    expect(step(page)).to_have_attribute("data-outcome", "verified")
    expect(page.locator("#phone")).to_have_value(number)
    expect(page.locator("#code")).to_be_hidden()
    assert stored_voter(page) == token
    before = votes_for(api, "N03")
    page.locator('.vote[data-id="N03"]').click()
    expect(page.locator("#message")).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    wait_until(lambda: votes_for(api, "N03") == before + 1, WAIT_MS / 1000, "the vote counted")

    tab = open_page(context, site)  # sessionStorage belongs to one tab
    assert stored_voter(tab) is None
    expect(tab.locator("#phone")).to_have_value("")
    expect(tab.locator("#code")).to_be_visible()
    expect(tab.locator("#send-code")).to_have_text("获取验证码")


def test_another_number_drops_the_token(context: Any, site: Site, gateway: SmsGateway) -> None:
    page = open_page(context, site)
    verify(page, gateway, new_phone())
    page.fill("#phone", new_phone())
    expect(step(page)).to_have_text("手机号已更换，请重新获取验证码。")
    expect(page.locator("#code")).to_be_visible()
    assert stored_voter(page) is None
    page.locator('.vote[data-id="N01"]').click()
    expect(page.locator("#message")).to_have_attribute("data-outcome", "verify_first")


def test_an_expired_token_brings_the_code_step_back(
    context: Any, site: Site, gateway: SmsGateway, api: httpx.Client
) -> None:
    campaign = site.campaign
    number = new_phone()
    # A token the service itself issued an hour ago for 60 s; the page still believes it.
    tokens = VoterTokens(
        campaign.id,
        SECRET,
        ttl_seconds=60,
        closes_at=campaign.closes_at.timestamp(),
        partners={},
        clock=lambda: time.time() - 3600,
    )
    token, _ = tokens.issue(hash_phone(SECRET, number))
    believed = {
        "campaign": campaign.id,
        "phone": number,
        "token": token,
        "expires": (time.time() + 600) * 1000,
    }
    page = context.new_page()
    page.add_init_script(
        f"sessionStorage.getItem({VOTER_KEY!r}) || "
        f"sessionStorage.setItem({VOTER_KEY!r}, {json.dumps(believed)!r})"
    )
    page.goto(site.url + "/")
    expect(page.locator(".vote")).to_have_count(30, timeout=WAIT_MS)
    expect(step(page)).to_have_attribute("data-outcome", "verified")
    before = votes_for(api, "N20")

    page.locator('.vote[data-id="N20"]').click()  # the service says 401 invalid_token
    message = page.locator("#message")
    expect(message).to_have_attribute("data-outcome", "verification_expired", timeout=WAIT_MS)
    expect(message).to_contain_text("手机号验证已失效，请在上方重新获取验证码")
    expect(step(page)).to_have_text("验证已失效，请重新获取验证码。")
    expect(page.locator("#code")).to_be_visible()
    assert stored_voter(page) is None

    verify(page, gateway, number)  # the vote the 401 refused goes in once verified again
    expect(message).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    wait_until(lambda: votes_for(api, "N20") == before + 1, WAIT_MS / 1000, "the vote counted")

    # A token whose expiry has passed on the phone's clock is dropped as the page loads.
    page.evaluate(
        "([key, value]) => sessionStorage.setItem(key, value)",
        [VOTER_KEY, json.dumps({**believed, "expires": (time.time() - 1) * 1000})],
    )
    page.reload()
    expect(page.locator(".vote")).to_have_count(30, timeout=WAIT_MS)
    expect(page.locator("#code")).to_be_visible()
    expect(step(page)).to_be_hidden()
    assert stored_voter(page) is None


# Every refusal of POST /v1/otp and /v1/otp/verify (README, Verified voters): status,
# code, Retry-After, and the sentence the page shows for it.
SEND_REPLIES = [
    (400, "invalid_phone", None, "手机号不正确：请填写 11 位中国大陆手机号（以 13–19 开头）。"),
    (400, "pow_required", None, "安全验证没有通过，请再点一次“获取验证码”。"),
    (400, "pow_invalid", None, "安全验证没有通过，请再点一次“获取验证码”。"),
    (403, "voting_closed", None, "投票已经结束，感谢您的关注！"),
    (429, "rate_limited", 42, "刚刚已经给这个手机号发过验证码，请查看短信；42 秒后可重新获取。"),
    (429, "rate_limited", 1500, "这个网络获取验证码的次数太多了，请 25 分钟后再试。"),
    (429, "daily_limit", 30000, "今天获取验证码的次数已用完，请明天再来。"),
    (503, "sms_budget_exhausted", 20, "现在获取验证码的人太多了，请 20 秒后再试。"),
    (502, "sms_unavailable", None, "短信发送失败，请稍后重试。"),
    (503, "unavailable", 1, "服务繁忙，请稍后再试。"),
    (400, "invalid_request", None, "页面出了点问题，请刷新页面后再试。"),
    (400, "invalid_json", None, "页面出了点问题，请刷新页面后再试。"),
    (500, "internal", None, "获取验证码没有成功，请稍后再试。"),
]
CHECK_REPLIES = [
    (400, "invalid_code", {"attempts_left": 2}, "验证码错误，还可以再试 2 次。"),
    (
        400,
        "invalid_code",
        {"attempts_left": 0},
        "验证码错误次数太多，这个验证码已失效，请重新获取。",
    ),
    (400, "code_expired", {}, "验证码已失效，请重新获取。"),
    (429, "rate_limited", {}, "尝试次数太多了，请 20 分钟后再试。"),
    (400, "invalid_phone", {}, "手机号不正确：请填写 11 位中国大陆手机号（以 13–19 开头）。"),
    (400, "invalid_request", {}, "请填写短信里的 6 位数字验证码。"),
    (503, "unavailable", {}, "服务繁忙，请稍后再试。"),
    (500, "internal", {}, "验证没有成功，请稍后再试。"),
]


def answer(status: int, code: str, retry_after: int | None = None, **fields: Any) -> Any:
    """A route handler that answers as the service refuses: its JSON error body."""
    body = json.dumps({"error": {"code": code, "message": "in English", **fields}})
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}

    def fulfil(route: Any) -> None:
        route.fulfill(status=status, body=body, content_type="application/json", headers=headers)

    return fulfil


def test_every_refusal_reads_in_chinese(context: Any, site: Site) -> None:
    page = open_page(context, site)
    for status, code, retry_after, text in SEND_REPLIES:
        page.route("**/v1/otp", answer(status, code, retry_after))
        page.fill("#phone", new_phone())  # a new number: no countdown from the last reply
        page.locator("#send-code").click()
        expect(step(page)).to_have_attribute("data-outcome", code, timeout=WAIT_MS)
        expect(step(page)).to_have_text(text)
        assert not re.search(r"[A-Za-z]", step(page).inner_text()), "an English word on the page"
        page.unroute("**/v1/otp")
    page.fill("#code", "123456")
    for status, code, fields, text in CHECK_REPLIES:
        page.route("**/v1/otp/verify", answer(status, code, 1200, **fields))
        page.evaluate("document.querySelector('#step').dataset.outcome = ''")
        page.locator("#check-code").click()
        expect(step(page)).to_have_attribute("data-outcome", code, timeout=WAIT_MS)
        expect(step(page)).to_have_text(text)
        assert not re.search(r"[A-Za-z]", step(page).inner_text()), "an English word on the page"
        page.unroute("**/v1/otp/verify")
        page.fill("#code", "123456")


def test_a_failing_sms_gateway_says_so(context: Any, site: Site, gateway: SmsGateway) -> None:
    page = open_page(context, site)
    number = new_phone()
    page.fill("#phone", number)
    gateway.status = 502
    try:
        page.locator("#send-code").click()
        expect(step(page)).to_have_attribute("data-outcome", "sms_unavailable", timeout=WAIT_MS)
        expect(step(page)).to_have_text("短信发送失败，请稍后重试。")
        expect(page.locator("#send-code")).to_be_enabled()  # no countdown: nothing was sent
        expect(page.locator("#send-code")).to_have_text("获取验证码")
    finally:
        gateway.status = 200
    send_code(page, gateway, number)  # the next try goes through


def _overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def check_phone_layout(page: Any, when: str) -> None:
    """No sideways scroll, and no message over an input, a button of the code step or a vote."""
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{when}: the page scrolls sideways ({width})"
    messages = [
        box
        for box in (page.locator(s).bounding_box() for s in ("#message", "#step"))
        if box is not None
    ]
    controls = page.locator("#phone-form input, #phone-form button")
    for index in range(controls.count()):
        box = controls.nth(index).bounding_box()
        if box is None:  # not shown at this step
            continue
        for message in messages:
            assert not _overlaps(message, box), f"{when}: a message covers {box}"


def test_on_a_phone_nothing_scrolls_sideways_or_covers_an_input(
    context: Any, site: Site, gateway: SmsGateway
) -> None:
    page = open_page(context, site)
    assert page.viewport_size == PHONE
    check_phone_layout(page, "loaded")
    page.locator('.vote[data-id="N30"]').click()  # far down the page
    expect(page.locator("#message")).to_have_attribute("data-outcome", "verify_first")
    check_phone_layout(page, "asked to verify")
    page.fill("#phone", "12345")
    page.locator("#send-code").click()
    expect(step(page)).to_have_attribute("data-outcome", "invalid_phone")
    check_phone_layout(page, "wrong number")
    number = new_phone()
    code = send_code(page, gateway, number)
    check_phone_layout(page, "code sent")
    page.fill("#code", wrong(code))
    page.locator("#check-code").click()
    expect(step(page)).to_have_attribute("data-outcome", "invalid_code", timeout=WAIT_MS)
    check_phone_layout(page, "wrong code")
    page.fill("#code", code)
    page.locator("#check-code").click()
    expect(page.locator("#message")).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    check_phone_layout(page, "voted")


def test_a_partner_only_campaign_sends_voters_to_the_partner_app(
    context: Any, serve: Serve
) -> None:
    partner = serve(
        verified_campaign("verified-partner", methods='["partner"]', partners='["app12351"]')
    )
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(partner.url + "/")
    expect(page.locator(".card")).to_have_count(30, timeout=WAIT_MS)
    expect(page.locator("#elsewhere")).to_be_visible()
    expect(page.locator("#elsewhere")).to_contain_text("本次投票请在合作方 App 内完成")
    expect(page.locator("#phone")).to_be_hidden()
    expect(page.locator(".vote")).to_have_count(0)
    assert not [url for url in requests if "/v1/pow" in url or "/v1/otp" in url]


def test_screenshots_of_the_verified_flow(
    browser: Any, site: Site, gateway: SmsGateway, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shots = screenshot_dir(os.environ, tmp_path_factory)
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    page = context.new_page()
    page.goto(site.url + "/")
    expect(page.locator(".vote")).to_have_count(30, timeout=WAIT_MS)
    number = "13700001234"
    page.fill("#phone", number)
    page.locator("#phone").blur()
    page.screenshot(path=shots / "verified-1-phone.png")

    code = send_code(page, gateway, number)
    page.locator("#send-code").blur()
    expect(page.locator("#send-code")).to_have_text(re.compile(r"^\d+ 秒后可重新获取$"))
    page.screenshot(path=shots / "verified-2-code-sent.png")

    page.fill("#code", code)
    page.locator("#code").blur()
    page.screenshot(path=shots / "verified-3-code-entered.png")

    page.locator("#check-code").click()
    expect(step(page)).to_have_attribute("data-outcome", "verified", timeout=WAIT_MS)
    page.locator('.vote[data-id="N01"]').click()
    expect(page.locator("#message")).to_have_attribute("data-outcome", "accepted", timeout=WAIT_MS)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=shots / "verified-4-voted.png")
    context.close()
