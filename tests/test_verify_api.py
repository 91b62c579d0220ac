"""The verified-voter flow end to end: proof of work, SMS code, token, votes.

A real Redis, the in-process app, and a real HTTP server as the SMS gateway
the webhook sender posts to (tests/sms_gateway.py).
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
import redis.asyncio as aioredis
from altcha.v1 import Challenge as ChallengeV1
from altcha.v1 import solve_challenge as solve_challenge_v1

from tests.sms_gateway import SmsGateway
from tests.support import SECRET, Service, campaign_toml, phone, running_service
from votesvc.campaign import parse_campaign
from votesvc.errors import ConfigError
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings
from votesvc.sms import verify_signature
from votesvc.verification import check_verification, warn_if_unverified

WEBHOOK_SECRET = b"webhook-secret-of-the-gateway-0123456789"
PARTNER_KEY = b"p" * 32
OTHER_KEY = b"q" * 32
FAST_POW = 2000


def verification(**overrides: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "methods": ["sms", "partner"],
        "partners": ["app12351"],
        "pow_max_number": FAST_POW,
    }
    table.update(overrides)
    return table


@contextlib.asynccontextmanager
async def verified_service(
    redis_server: EmbeddedRedis, tmp_path: Path, gateway: SmsGateway, **table: Any
) -> AsyncIterator[Service]:
    campaign = parse_campaign(campaign_toml(verification=verification(**table)))
    async with running_service(
        redis_server.url,
        tmp_path,
        campaign=campaign,
        sms_sender=f"webhook:{gateway.url}",
        sms_webhook_secret=WEBHOOK_SECRET,
        partner_keys=(("app12351", PARTNER_KEY),),
    ) as service:
        yield service


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    with SmsGateway() as running:
        yield running


@pytest.fixture
async def verified(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, gateway: SmsGateway
) -> AsyncIterator[Service]:
    async with verified_service(redis_server, tmp_path, gateway) as service:
        yield service


async def solved_pow(client: httpx.AsyncClient) -> str:
    """GET /v1/pow, solved as the ALTCHA widget does, as the base64 payload."""
    response = await client.get("/v1/pow")
    assert response.status_code == 200
    challenge = response.json()
    solution = solve_challenge_v1(
        ChallengeV1(
            challenge["algorithm"],
            challenge["challenge"],
            challenge["maxNumber"],
            challenge["salt"],
            challenge["signature"],
        )
    )
    assert solution is not None
    payload = {
        "algorithm": challenge["algorithm"],
        "challenge": challenge["challenge"],
        "number": solution.number,
        "salt": challenge["salt"],
        "signature": challenge["signature"],
    }
    return base64.b64encode(orjson.dumps(payload)).decode()


async def ask_code(service: Service, number: str, **kwargs: Any) -> httpx.Response:
    client: httpx.AsyncClient = kwargs.pop("client", service.client)
    body = {"phone": number, "pow": await solved_pow(client)}
    return await client.post("/v1/otp", json=body, **kwargs)


async def check_code(service: Service, number: str, code: str, **kwargs: Any) -> httpx.Response:
    client: httpx.AsyncClient = kwargs.pop("client", service.client)
    return await client.post("/v1/otp/verify", json={"phone": number, "code": code}, **kwargs)


async def verified_token(service: Service, gateway: SmsGateway, number: str) -> str:
    sent = await ask_code(service, number)
    assert sent.status_code == 202, sent.text
    checked = await check_code(service, number, gateway.last_code(number))
    assert checked.status_code == 200, checked.text
    token: str = checked.json()["token"]
    return token


async def vote(service: Service, nominee: str, token: str | None, **body: Any) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return await service.client.post(
        "/v1/votes", json={"nominee": nominee, **body}, headers=headers
    )


def partner_token(service: Service, *, key: bytes = PARTNER_KEY, **claims: Any) -> str:
    now = int(service.clock())
    payload = {
        "iss": "app12351",
        "aud": service.campaign.id,
        "sub": "user-42",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, "HS256")


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_code_token_vote_then_quotas(verified: Service, gateway: SmsGateway) -> None:
    sent = await ask_code(verified, phone(1))
    assert sent.status_code == 202
    assert sent.json() == {"expires_in": 300, "resend_after": 60}
    delivery = gateway.deliveries[-1]
    assert delivery.body["campaign"] == verified.campaign.id
    assert delivery.body["phone"] == "+86" + phone(1)
    assert delivery.body["ttl_seconds"] == 300
    assert len(delivery.body["code"]) == 6
    assert delivery.body["code"].isdigit()
    assert verify_signature(
        WEBHOOK_SECRET,
        delivery.headers["x-votesvc-timestamp"],
        delivery.raw,
        delivery.headers["x-votesvc-signature"],
    )

    checked = await check_code(verified, phone(1), delivery.body["code"])
    assert checked.status_code == 200
    token = checked.json()["token"]
    assert checked.json()["expires_at"].endswith("+08:00")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "votesvc"
    assert claims["aud"] == verified.campaign.id
    assert claims["exp"] - claims["iat"] == 86400
    assert phone(1) not in token

    first = await vote(verified, "N01", token)
    assert first.status_code == 201, first.text
    assert first.json()["remaining_today"] == 9
    again = await vote(verified, "N01", token)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_voted"
    for index in range(2, 11):
        assert (await vote(verified, f"N{index:02d}", token, phone=phone(1))).status_code == 201
    spent = await vote(verified, "N11", token)
    assert spent.status_code == 429
    assert spent.json()["error"]["code"] == "daily_limit"

    used = await check_code(verified, phone(1), delivery.body["code"])  # a code verifies once
    assert used.json()["error"]["code"] == "code_expired"


async def test_wrong_codes_then_the_code_is_dead(verified: Service, gateway: SmsGateway) -> None:
    assert (await ask_code(verified, phone(2))).status_code == 202
    code = gateway.last_code(phone(2))
    lefts = []
    for _ in range(5):
        response = await check_code(verified, phone(2), wrong(code))
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_code"
        lefts.append(error["attempts_left"])
    assert lefts == [4, 3, 2, 1, 0]
    late = await check_code(verified, phone(2), code)
    assert late.status_code == 400
    assert late.json()["error"]["code"] == "code_expired"


async def test_malformed_code_counts_no_try(verified: Service, gateway: SmsGateway) -> None:
    assert (await ask_code(verified, phone(3))).status_code == 202
    for bad in ("12345", "1234567", "12a456", "\uff11\uff12\uff13\uff14\uff15\uff16", " 123456"):
        response = await check_code(verified, phone(3), bad)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_request"
    wrong_once = await check_code(verified, phone(3), wrong(gateway.last_code(phone(3))))
    assert wrong_once.json()["error"]["attempts_left"] == 4


async def test_resend_inside_the_cooldown_is_refused(
    verified: Service, gateway: SmsGateway
) -> None:
    assert (await ask_code(verified, phone(4))).status_code == 202
    again = await ask_code(verified, phone(4))
    assert again.status_code == 429
    assert again.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(again.headers["Retry-After"]) <= 60
    assert len(gateway.deliveries) == 1


async def test_daily_sends_then_daily_limit(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, gateway: SmsGateway
) -> None:
    async with verified_service(
        redis_server, tmp_path, gateway, resend_seconds=1, sends_per_phone_per_day=2
    ) as service:
        for _ in range(2):
            response = await ask_code(service, phone(5))
            assert response.status_code == 202
            await redis.delete(*[key async for key in redis.scan_iter(match="*:cool:*")])
        refused = await ask_code(service, phone(5))
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "daily_limit"
        assert int(refused.headers["Retry-After"]) > 0


async def test_pow_required_invalid_and_replayed(verified: Service, gateway: SmsGateway) -> None:
    missing = await verified.client.post("/v1/otp", json={"phone": phone(6)})
    assert missing.json()["error"]["code"] == "pow_required"
    garbage = await verified.client.post("/v1/otp", json={"phone": phone(6), "pow": "bm9wZQ=="})
    assert garbage.json()["error"]["code"] == "pow_invalid"
    payload = await solved_pow(verified.client)
    first = await verified.client.post("/v1/otp", json={"phone": phone(6), "pow": payload})
    assert first.status_code == 202
    replay = await verified.client.post("/v1/otp", json={"phone": phone(7), "pow": payload})
    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "pow_invalid"
    assert len(gateway.deliveries) == 1


async def test_no_pow_when_turned_off(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, gateway: SmsGateway
) -> None:
    async with verified_service(redis_server, tmp_path, gateway, pow_max_number=0) as service:
        assert (await service.client.get("/v1/pow")).status_code == 404
        sent = await service.client.post("/v1/otp", json={"phone": phone(8)})
        assert sent.status_code == 202


async def test_tokens_refused(verified: Service, gateway: SmsGateway) -> None:
    token = await verified_token(verified, gateway, phone(9))
    head, body, signature = token.split(".")
    tampered = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    other_campaign = partner_token(verified, aud="another-campaign")
    unknown = partner_token(verified, iss="wechat")
    wrong_key = partner_token(verified, key=OTHER_KEY)
    expired = partner_token(
        verified, iat=int(verified.clock()) - 1000, exp=int(verified.clock()) - 100
    )
    for bad in (tampered, other_campaign, unknown, wrong_key, expired, "not-a-jwt"):
        response = await vote(verified, "N01", bad)
        assert response.status_code == 401, bad
        assert response.json()["error"]["code"] == "invalid_token"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    missing = await vote(verified, "N01", None)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "verification_required"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    basic = await verified.client.post(
        "/v1/votes", json={"nominee": "N01"}, headers={"Authorization": "Basic eDp5"}
    )
    assert basic.json()["error"]["code"] == "verification_required"

    verified.clock.advance(86400 + 60)  # the SMS token itself expires
    assert (await vote(verified, "N01", token)).json()["error"]["code"] == "invalid_token"


async def test_vote_checks_in_order(verified: Service, gateway: SmsGateway) -> None:
    token = await verified_token(verified, gateway, phone(10))
    bad_phone = await vote(verified, "N01", None, phone="123")
    assert bad_phone.json()["error"]["code"] == "invalid_phone"  # before the 401
    mismatch = await vote(verified, "N01", token, phone=phone(11))
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["code"] == "phone_mismatch"
    unknown = await vote(verified, "N99", token)
    assert unknown.json()["error"]["code"] == "unknown_nominee"
    extra = await vote(verified, "N01", token, note="hi")
    assert extra.json()["error"]["code"] == "invalid_request"
    same_phone = await vote(verified, "N01", token, phone="+86 " + phone(10))
    assert same_phone.status_code == 201


async def test_partner_tokens_share_quotas_with_sms_voters(
    verified: Service, gateway: SmsGateway, redis: aioredis.Redis
) -> None:
    token = await verified_token(verified, gateway, phone(12))
    assert (await vote(verified, "N01", token)).status_code == 201
    with_phone = partner_token(verified, phone_number="+86" + phone(12))
    shared = await vote(verified, "N01", with_phone)
    assert shared.status_code == 409  # the same voter as through SMS
    assert (await vote(verified, "N02", with_phone)).json()["remaining_today"] == 8
    without_phone = partner_token(verified, sub="user-7")
    own = await vote(verified, "N01", without_phone)
    assert own.status_code == 201
    assert own.json()["remaining_today"] == 9

    methods = set()
    for stream in [key async for key in redis.scan_iter(match="*:votes")]:
        entries: Any = await redis.xrange(stream)
        for _, fields in entries:
            methods.add(fields[b"m"].decode())
    assert methods == {"sms", "partner:app12351"}


async def test_budget_exhausted(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, gateway: SmsGateway
) -> None:
    async with verified_service(
        redis_server, tmp_path, gateway, sms_budget_per_minute=2
    ) as service:
        for n in (20, 21):
            assert (await ask_code(service, phone(n))).status_code == 202
        refused = await ask_code(service, phone(22))
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "sms_budget_exhausted"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        service.clock.advance(60)  # the next minute has its own budget
        assert (await ask_code(service, phone(22))).status_code == 202


async def test_gateway_down_counts_nothing_and_keeps_the_old_code(
    verified: Service, gateway: SmsGateway, redis: aioredis.Redis
) -> None:
    assert (await ask_code(verified, phone(30))).status_code == 202
    old = gateway.last_code(phone(30))
    await redis.delete(*[key async for key in redis.scan_iter(match="*:cool:*")])
    gateway.status = 500
    failed = await ask_code(verified, phone(30))
    assert failed.status_code == 502
    assert failed.json()["error"]["code"] == "sms_unavailable"
    counters = {
        key.decode(): int(await redis.get(key) or 0)
        async for key in redis.scan_iter(match="*:otp}:[sipb]*")
        if await redis.type(key) == b"string" and b":pow:" not in key
    }
    assert counters
    assert all(value == 1 for value in counters.values()), counters
    assert not [key async for key in redis.scan_iter(match="*:cool:*")]  # no cooldown either
    gateway.status = 200
    assert (await check_code(verified, phone(30), old)).status_code == 200


async def test_network_limits(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, gateway: SmsGateway
) -> None:
    async with verified_service(
        redis_server,
        tmp_path,
        gateway,
        sends_per_ip_per_hour=2,
        sends_per_prefix_per_hour=3,
        verifies_per_ip_per_hour=2,
    ) as service:
        assert (await ask_code(service, phone(40))).status_code == 202
        assert (await ask_code(service, phone(41))).status_code == 202
        per_ip = await ask_code(service, phone(42))
        assert per_ip.json()["error"]["code"] == "rate_limited"
        neighbour = await service.from_peer("198.51.100.8")  # the same /24
        assert (await ask_code(service, phone(43), client=neighbour)).status_code == 202
        per_prefix = await ask_code(service, phone(44), client=neighbour)
        assert per_prefix.json()["error"]["code"] == "rate_limited"
        elsewhere = await service.from_peer("203.0.113.9")
        assert (await ask_code(service, phone(45), client=elsewhere)).status_code == 202

        for _ in range(2):
            response = await check_code(service, phone(40), "000000")
            assert response.json()["error"]["code"] in ("invalid_code", "code_expired")
        blocked = await check_code(service, phone(41), gateway.last_code(phone(41)))
        assert blocked.status_code == 429
        assert blocked.json()["error"]["code"] == "rate_limited"
        assert int(blocked.headers["Retry-After"]) >= 1
        service.clock.advance(3600)  # the next clock hour
        assert (
            await check_code(service, phone(41), gateway.last_code(phone(41)))
        ).status_code == 200


async def test_voting_closed_sends_no_code(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, gateway: SmsGateway
) -> None:
    text = campaign_toml(verification=verification(), closes_at="2026-02-01T00:00:00+08:00")
    async with running_service(
        redis_server.url,
        tmp_path,
        campaign=parse_campaign(text),
        sms_sender=f"webhook:{gateway.url}",
        sms_webhook_secret=WEBHOOK_SECRET,
        partner_keys=(("app12351", PARTNER_KEY),),
    ) as service:
        response = await ask_code(service, phone(50))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "voting_closed"
        assert gateway.deliveries == []


async def test_invented_numbers_cast_nothing(verified: Service, redis: aioredis.Redis) -> None:
    codes = set()
    for n in range(1000):
        response = await verified.client.post(
            "/v1/votes", json={"nominee": "N07", "phone": f"138{n:08d}"}
        )
        codes.add((response.status_code, response.json()["error"]["code"]))
    assert codes == {(401, "verification_required")}
    assert (await verified.fresh_tally())["total"] == 0
    assert [key async for key in redis.scan_iter(match="*:votes")] == []


async def test_no_raw_phone_or_code_kept(
    verified: Service, gateway: SmsGateway, redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    numbers = [phone(60), phone(61)]
    for number in numbers:
        token = await verified_token(verified, gateway, number)
        assert (await vote(verified, "N03", token)).status_code == 201
    await ask_code(verified, phone(61))  # a refused resend leaves nothing either
    secrets = [*numbers, *(d.body["code"] for d in gateway.deliveries)]
    dump = []
    async for key in redis.scan_iter():
        dump.append(key)
        kind = await redis.type(key)
        if kind == b"string":
            dump.append(await redis.get(key) or b"")
        elif kind == b"hash":
            for field, value in (await redis.hgetall(key)).items():
                dump += [field, value]
        elif kind == b"stream":
            entries: Any = await redis.xrange(key)
            for _, fields in entries:
                for field, value in fields.items():
                    dump += [field, value]
    text = b"\n".join(dump).decode("latin-1")
    for secret in secrets:
        assert secret not in text
    for record in caplog.records:
        for secret in secrets:
            assert secret not in record.getMessage()


async def test_unverified_campaign_is_as_before(service: Service) -> None:
    assert (await service.client.post("/v1/otp", json={"phone": phone(1)})).status_code == 404
    assert (await service.client.get("/v1/pow")).status_code == 404
    body = (await service.client.get("/v1/nominees")).json()
    assert "verification" not in body["campaign"]
    response = await service.client.post(
        "/v1/votes",
        json={"nominee": "N01", "phone": phone(1)},
        headers={"Authorization": "Bearer whatever"},
    )
    assert response.status_code == 201
    no_phone = await service.client.post("/v1/votes", json={"nominee": "N01"})
    assert no_phone.json()["error"]["code"] == "invalid_request"


async def test_nominees_tell_the_page_how_to_verify(verified: Service) -> None:
    body = (await verified.client.get("/v1/nominees")).json()
    assert body["campaign"]["verification"] == {
        "methods": ["sms", "partner"],
        "code_ttl_seconds": 300,
        "resend_seconds": 60,
        "pow": True,
    }


def test_sms_without_a_sender_stops_start_up(tmp_path: Path) -> None:
    campaign = parse_campaign(campaign_toml(verification=verification()))
    settings = Settings(data_dir=tmp_path, secret=SECRET, partner_keys=(("app12351", PARTNER_KEY),))
    with pytest.raises(ConfigError, match="VOTESVC_SMS_SENDER"):
        check_verification(campaign, settings)
    keyless = Settings(data_dir=tmp_path, secret=SECRET, sms_sender="log")
    with pytest.raises(ConfigError, match="app12351"):
        check_verification(campaign, keyless)


def test_unverified_campaign_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    campaign = parse_campaign(campaign_toml())
    check_verification(campaign, Settings(data_dir=tmp_path, secret=SECRET))
    assert not caplog.records  # the checks pass quietly ...
    warn_if_unverified(campaign)  # ... and serve warns once it has started
    warn_if_unverified(parse_campaign(campaign_toml(verification=verification())))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "NOT verified" in warnings[0].getMessage()
