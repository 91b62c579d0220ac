# ruff: noqa: RUF001  (the pages speak Chinese: full-width punctuation)
"""The console's gate, sign-in and out, sessions, CSRF and roles, over HTTP (in process)."""

from __future__ import annotations

import re
from pathlib import Path

import redis.asyncio as aioredis

from tests.admin.support import (
    ELSEWHERE,
    HERE,
    OTHER_PASSWORD,
    PASSWORD,
    add_account,
    code_of,
    console_service,
    csrf_of,
    organiser,
)
from tests.support import make_campaign
from votesvc.ledger.store import build_store
from votesvc.redis_server import EmbeddedRedis

OUTSIDE = "192.0.2.1"


async def test_the_console_is_404_without_an_account(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with console_service(redis_server.url, tmp_path, accounts={}) as service:
        for path in ("/admin", "/admin/login", "/admin/overview", "/admin/static/admin.css"):
            response = await service.client.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"
        await add_account(service.settings, "ann")
        assert (await service.client.get("/admin/login")).status_code == 200
        assert (await service.client.get("/admin/static/admin.css")).status_code == 200


async def test_outside_the_allow_list_the_console_is_404(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(trusted_proxies=["10.0.0.0/8"])
    async with console_service(redis_server.url, tmp_path, campaign=campaign) as service:
        async with organiser(service, OUTSIDE) as stranger:
            response = await stranger.client.get("/admin/login")
            assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
            # Its own claims are not believed: it is no trusted proxy.
            claimed = await stranger.client.get("/admin/login", headers={"X-Forwarded-For": HERE})
            assert claimed.status_code == 404
        async with organiser(service, "10.1.2.3") as proxy:
            assert (await proxy.client.get("/admin/login")).status_code == 404  # the proxy itself
            through = {"X-Forwarded-For": f"{OUTSIDE}, {HERE}"}  # the right-most untrusted hop
            assert (await proxy.client.get("/admin/login", headers=through)).status_code == 200
            outside = {"X-Forwarded-For": f"{HERE}, {OUTSIDE}"}
            assert (await proxy.client.get("/admin/login", headers=outside)).status_code == 404
    # The default allows loopback only: the test client's 198.51.100.7 finds nothing.
    async with (
        console_service(redis_server.url, tmp_path / "default", admin_allow=None) as service,
        organiser(service, "127.0.0.1") as local,
    ):
        assert (await service.client.get("/admin/login")).status_code == 404
        assert (await local.client.get("/admin/login")).status_code == 200


async def test_sign_in_rotates_the_session_and_sign_out_ends_it(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with console_service(redis_server.url, tmp_path) as service, organiser(service) as ann:
        home = await ann.client.get("/admin")
        assert (home.status_code, home.headers["location"]) == (303, "/admin/overview")
        away = await ann.client.get("/admin/overview")
        assert (away.status_code, away.headers["location"]) == (303, "/admin/login")

        ann.client.cookies.set(
            "votesvc_admin", "planted-before-sign-in", domain="votesvc.local", path="/admin"
        )
        signed = await ann.sign_in()
        assert (signed.status_code, signed.headers["location"]) == (303, "/admin/overview")
        cookies = signed.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("votesvc_admin="))
        token = session.split(";")[0].split("=", 1)[1]
        assert token != "planted-before-sign-in"
        assert {"Path=/admin", "HttpOnly", "SameSite=Strict"} <= set(session.split("; "))
        assert "Secure" not in session  # plain http
        page = await ann.client.get("/admin/overview")
        assert page.status_code == 200
        assert "ann" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"

        again = await ann.sign_in()  # a new session each time, the old one ended
        assert again.status_code == 303
        assert ann.client.cookies["votesvc_admin"] != token
        async with organiser(service) as thief:
            thief.client.cookies.set("votesvc_admin", token, domain="votesvc.local", path="/admin")
            stolen = await thief.client.get("/admin/overview")
            assert stolen.headers["location"] == "/admin/login?expired=1"

        out = await ann.post("/admin/logout", {})
        assert (out.status_code, out.headers["location"]) == (303, "/admin/login?bye=1")
        after = await ann.client.get("/admin/login?bye=1")
        assert "您已退出登录" in after.text
        assert (await ann.client.get("/admin/overview")).status_code == 303


async def test_the_cookies_are_secure_when_https_came_through_a_trusted_proxy(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(trusted_proxies=["10.0.0.0/8"])
    async with console_service(redis_server.url, tmp_path, campaign=campaign) as service:
        https = {"X-Forwarded-For": HERE, "X-Forwarded-Proto": "https"}
        async with organiser(service, "10.0.0.2") as ann:
            page = await ann.client.get("/admin/login", headers=https)
            assert "Secure" in page.headers["set-cookie"].split("; ")
        async with organiser(service, HERE) as ann:  # not a proxy: its header counts for nothing
            page = await ann.client.get("/admin/login", headers={"X-Forwarded-Proto": "https"})
            assert "Secure" not in page.headers["set-cookie"].split("; ")
        async with organiser(service, HERE, base_url="https://votesvc") as ann:
            signed = await ann.sign_in()
            assert "Secure" in signed.headers["set-cookie"].split("; ")


async def test_no_cors_on_the_console(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    origin = "https://media.example"
    async with console_service(redis_server.url, tmp_path, cors_origins=(origin,)) as service:
        api = await service.client.get("/v1/nominees", headers={"Origin": origin})
        assert api.headers["access-control-allow-origin"] == origin  # CORS is on for the API
        page = await service.client.get("/admin/login", headers={"Origin": origin})
        assert page.status_code == 200
        assert not [h for h in page.headers if h.startswith("access-control-")]
        preflight = await service.client.options(
            "/admin/login",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 405
        assert not [h for h in preflight.headers if h.startswith("access-control-")]


async def test_wrong_passwords_lock_that_account_from_that_prefix_only(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    accounts = {"ann": "operator", "bob": "viewer"}
    async with console_service(
        redis_server.url, tmp_path, database_url, accounts=accounts
    ) as service:
        async with organiser(service, HERE) as guesser:
            for attempt in range(1, 6):
                wrong = await guesser.sign_in("ann", f"wrong password {attempt}")
                expected = (401, "wrong") if attempt < 5 else (429, "locked")
                assert (wrong.status_code, code_of(wrong.text)) == expected, attempt
            assert "暂停登录到" in wrong.text
            assert "（北京时间）" in wrong.text
            # Locked from here: even the right password is not checked.
            right = await guesser.sign_in("ann", PASSWORD)
            assert (right.status_code, code_of(right.text)) == (429, "locked")
            # Another account from the same network is not locked.
            assert (await guesser.sign_in("bob", PASSWORD)).status_code == 303
        async with organiser(service, "198.51.100.200") as neighbour:  # the same /24
            assert (await neighbour.sign_in("ann", PASSWORD)).status_code == 429
        async with organiser(service, ELSEWHERE) as colleague:  # another network signs in
            signed = await colleague.sign_in("ann", PASSWORD)
            assert (signed.status_code, signed.headers["location"]) == (303, "/admin/overview")
        service.clock.advance(15 * 60 + 1)
        async with organiser(service, HERE) as later:
            assert (await later.sign_in("ann", PASSWORD)).status_code == 303
            # An unknown name never locks and is never written down.
            for _ in range(6):
                unknown = await later.sign_in("nobody", PASSWORD)
                assert (unknown.status_code, code_of(unknown.text)) == (401, "wrong")
        store = build_store(service.settings)
        await store.open()
        try:
            log = await store.audit_log(service.campaign.id)
        finally:
            await store.close()
    actions = [(row.actor, row.action) for row in log]
    assert actions == [
        *[("ann", "signin_failed")] * 5,
        ("ann", "signin_locked"),
        ("bob", "signin"),
        ("ann", "signin"),
        ("ann", "signin"),
    ]
    assert "nobody" not in str(log)


async def test_a_form_without_its_csrf_token_is_refused(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with console_service(redis_server.url, tmp_path) as service, organiser(service) as ann:
        form = await ann.client.get("/admin/login")
        no_token = await ann.client.post("/admin/login", data={"name": "ann", "password": PASSWORD})
        assert (no_token.status_code, code_of(no_token.text)) == (403, "csrf_failed")
        async with organiser(service) as other:  # a token without its cookie
            borrowed = await other.client.post(
                "/admin/login",
                data={"csrf": csrf_of(form.text), "name": "ann", "password": PASSWORD},
            )
            assert (borrowed.status_code, code_of(borrowed.text)) == (403, "csrf_failed")
        assert (await ann.sign_in()).status_code == 303
        choice = {"way": "nominee", "nominee": "N01"}
        for data in (choice, {**choice, "csrf": ""}, {**choice, "csrf": "0" * 64}):
            refused = await ann.client.post("/admin/void/preview", data=data)
            assert (refused.status_code, code_of(refused.text)) == (403, "csrf_failed")
            assert "这次操作没有执行" in refused.text
        out = await ann.client.post("/admin/logout", data={})
        assert (out.status_code, code_of(out.text)) == (403, "csrf_failed")
        assert (await ann.client.get("/admin/overview")).status_code == 200  # still signed in
        async with organiser(service) as bob:  # another session's token is no token here
            assert (await bob.sign_in()).status_code == 303
            theirs = await bob.csrf()
        cross = await ann.client.post("/admin/void/preview", data={**choice, "csrf": theirs})
        assert cross.status_code == 403
        preview = await ann.post("/admin/void/preview", choice)
        assert preview.status_code == 200


async def test_a_viewer_sees_every_page_and_cannot_void(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with (
        console_service(redis_server.url, tmp_path, accounts={"vic": "viewer"}) as service,
        organiser(service) as vic,
    ):
        assert (await vic.sign_in("vic")).status_code == 303
        for path in ("/admin/overview", "/admin/award", "/admin/audit"):
            page = await vic.client.get(path)
            assert page.status_code == 200, path
            assert "/admin/void" not in page.text  # no menu entry for what it cannot do
        page = await vic.client.get("/admin/void")
        assert (page.status_code, code_of(page.text)) == (403, "forbidden")
        for path in ("/admin/void/preview", "/admin/void/confirm"):
            refused = await vic.post(path, {"way": "nominee", "nominee": "N01", "reason": "x"})
            assert (refused.status_code, code_of(refused.text)) == (403, "forbidden"), path
            assert "只能查看" in refused.text


async def test_an_expired_session_goes_back_to_sign_in(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with console_service(redis_server.url, tmp_path) as service, organiser(service) as ann:
        assert (await ann.sign_in()).status_code == 303
        for _ in range(2):  # each request keeps it alive for another 30 minutes
            service.clock.advance(29 * 60)
            assert (await ann.client.get("/admin/overview")).status_code == 200
        service.clock.advance(30 * 60 + 1)
        gone = await ann.client.get("/admin/award")
        assert (gone.status_code, gone.headers["location"]) == (303, "/admin/login?expired=1")
        page = await ann.client.get(gone.headers["location"])
        assert code_of(page.text) == "expired"
        assert "登录已过期" in page.text
        # A form posted after expiry changes nothing and goes back to sign-in too.
        late = await ann.client.post("/admin/void/preview", data={"csrf": "x", "way": "ids"})
        assert late.headers["location"] == "/admin/login"  # the cookie was cleared

        assert (await ann.sign_in()).status_code == 303
        for _ in range(12 * 3 - 1):  # busy all day: 12 hours is the most a session lives
            service.clock.advance(20 * 60)
            assert (await ann.client.get("/admin/overview")).status_code == 200
        service.clock.advance(20 * 60 + 1)
        assert (await ann.client.get("/admin/overview")).status_code == 303


async def test_a_password_is_never_kept_from_the_sign_in_form(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with console_service(redis_server.url, tmp_path) as service, organiser(service) as ann:
        typed = await ann.sign_in(OTHER_PASSWORD, PASSWORD)  # fields swapped by mistake
        assert typed.status_code == 401
        assert OTHER_PASSWORD not in typed.text
        assert re.search(r'name="name" value=""', typed.text)


async def test_sign_ins_and_voids_are_counted_in_the_metrics(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with (
        console_service(redis_server.url, tmp_path, metrics_port=9) as service,
        organiser(service) as ann,
    ):
        registry = service.app.state.metrics.registry
        assert (await ann.sign_in("ann", "wrong password!")).status_code == 401
        assert (await ann.sign_in("nobody")).status_code == 401
        assert (await ann.sign_in()).status_code == 303
        assert (await service.vote("N01", "13900000001")).status_code == 201
        preview = await ann.post("/admin/void/preview", {"way": "nominee", "nominee": "N01"})
        fields = dict(
            re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', preview.text)
        )
        done = await ann.client.post("/admin/void/confirm", data={**fields, "reason": "x"})
        assert done.status_code == 200
        for outcome, count in (("wrong_password", 1), ("unknown_account", 1), ("ok", 1)):
            value = registry.get_sample_value("votesvc_admin_signins_total", {"outcome": outcome})
            assert value == count, outcome
        assert registry.get_sample_value("votesvc_votes_voided_total") == 1
