"""The HTTP contract of API v1, exercised as a client would."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Service, make_campaign, phone, running_service
from votesvc.keys import Keys
from votesvc.redis_server import EmbeddedRedis

JSON = {"Content-Type": "application/json"}


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    code: str = body["error"]["code"]
    return code


async def post_raw(
    service: Service, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await service.client.post("/v1/votes", content=content, headers=headers or JSON)


async def test_accepted_vote_returns_201_with_remaining(service: Service) -> None:
    response = await service.vote("N07", phone(1))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"vote_id", "nominee", "remaining_today"}
    assert body["nominee"] == "N07"
    assert body["remaining_today"] == 9
    second = await service.vote("N08", phone(1))
    assert second.json()["remaining_today"] == 8
    assert second.json()["vote_id"] != body["vote_id"]


@pytest.mark.parametrize(
    "number",
    ["13800138000", "+8613800138000", "008613800138000", "+86 138-0013-8000", "199 9999 9999"],
)
async def test_phone_formats_that_are_accepted(service: Service, number: str) -> None:
    assert (await service.vote("N01", number)).status_code == 201


async def test_same_number_in_another_format_is_the_same_phone(service: Service) -> None:
    assert (await service.vote("N01", "13800138000")).status_code == 201
    again = await service.vote("N01", "+86 138 0013 8000")
    assert again.status_code == 409
    assert error_code(again) == "already_voted"


@pytest.mark.parametrize(
    "number",
    [
        "",
        "12800138000",
        "1380013800",
        "138001380001",
        "+85213800138000",
        "1380013800a",
        "\uff18\uff1613800138000",
        "13800138000\n",
        "86 13800138000",
        "+86+8613800138000",
    ],
)
async def test_invalid_phone(service: Service, number: str) -> None:
    response = await service.vote("N01", number)
    assert response.status_code == 400
    assert error_code(response) == "invalid_phone"


@pytest.mark.parametrize(
    "payload",
    [
        {"nominee": "N01"},
        {"phone": "13800138000"},
        {},
        {"nominee": "N01", "phone": 13800138000},
        {"nominee": 1, "phone": "13800138000"},
        {"nominee": None, "phone": "13800138000"},
        {"nominee": "N01", "phone": "13800138000", "extra": 1},
        [],
        "N01",
        42,
    ],
)
async def test_invalid_request(service: Service, payload: Any) -> None:
    response = await service.client.post("/v1/votes", json=payload)
    assert response.status_code == 400
    assert error_code(response) == "invalid_request"


async def test_json_null_is_an_invalid_request(service: Service) -> None:
    response = await post_raw(service, b"null")
    assert response.status_code == 400
    assert error_code(response) == "invalid_request"


@pytest.mark.parametrize(
    "content", [b"", b"{", b"nominee=N01", b'{"nominee": "N01",}', b"\xff\xfe"]
)
async def test_invalid_json(service: Service, content: bytes) -> None:
    response = await post_raw(service, content)
    assert response.status_code == 400
    assert error_code(response) == "invalid_json"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
async def test_unsupported_media_type(service: Service, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await service.client.post(
        "/v1/votes", content=b'{"nominee": "N01", "phone": "13800138000"}', headers=headers
    )
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"


async def test_json_with_charset_is_accepted(service: Service) -> None:
    response = await post_raw(
        service,
        b'{"nominee": "N01", "phone": "13800138000"}',
        {"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


async def test_payload_too_large(service: Service) -> None:
    padded = b'{"nominee": "N01", "phone": "13800138000"' + b" " * 1100 + b"}"
    response = await post_raw(service, padded)
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


async def test_payload_too_large_without_content_length(service: Service) -> None:
    async def chunks() -> Any:
        for _ in range(5):
            yield b" " * 300

    response = await service.client.post("/v1/votes", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


async def test_unknown_nominee(service: Service) -> None:
    response = await service.vote("N99", phone(1))
    assert response.status_code == 404
    assert error_code(response) == "unknown_nominee"


async def test_checks_apply_in_the_documented_order(service: Service) -> None:
    # 415 beats 413
    big = b"x" * 2000
    assert (await post_raw(service, big, {"Content-Type": "text/plain"})).status_code == 415
    # 413 beats invalid_json
    assert error_code(await post_raw(service, big)) == "payload_too_large"
    # invalid_request beats invalid_phone and unknown_nominee
    response = await service.client.post("/v1/votes", json={"nominee": "N99", "phone": 1})
    assert error_code(response) == "invalid_request"
    # invalid_phone beats unknown_nominee
    assert error_code(await service.vote("N99", "123")) == "invalid_phone"


def window(opens_in: float, closes_in: float) -> dict[str, str]:
    """A campaign window relative to the real time now (Redis's clock judges it)."""
    now = datetime.now(UTC)
    return {
        "opens_at": (now + timedelta(seconds=opens_in)).isoformat(timespec="seconds"),
        "closes_at": (now + timedelta(seconds=closes_in)).isoformat(timespec="seconds"),
    }


async def test_voting_closed_before_and_after_the_window(
    redis: Any, redis_server: EmbeddedRedis, tmp_path: Any
) -> None:
    not_yet = make_campaign(**window(3600, 7200))
    async with running_service(redis_server.url, tmp_path, campaign=not_yet) as service:
        early = await service.vote("N01", phone(1))
        assert early.status_code == 403
        assert error_code(early) == "voting_closed"
        assert "opens at" in early.json()["error"]["message"]
        # unknown_nominee is decided before voting_closed
        assert error_code(await service.vote("N99", phone(1))) == "unknown_nominee"
    over = make_campaign(**window(-7200, -3600))
    async with running_service(redis_server.url, tmp_path, campaign=over) as service:
        late = await service.vote("N02", phone(1))
        assert late.status_code == 403
        assert error_code(late) == "voting_closed"
        assert "closed at" in late.json()["error"]["message"]
        assert (await service.fresh_tally())["total"] == 0


async def test_the_window_is_judged_by_redis_clock_not_the_hosts(
    redis: Any, redis_server: EmbeddedRedis, tmp_path: Any
) -> None:
    open_now = make_campaign(**window(-3600, 3600))
    async with running_service(redis_server.url, tmp_path, campaign=open_now) as service:
        # This host's clock says the window closed a day ago: Redis's clock says open.
        service.clock.now = datetime.now(UTC).timestamp() + 86400
        accepted = await service.vote("N01", phone(1))
        assert accepted.status_code == 201
    over = make_campaign(campaign_id="over", **window(-7200, -1))
    async with running_service(redis_server.url, tmp_path, campaign=over) as service:
        # A host running slow thinks it is still open; Redis's clock says closed.
        service.clock.now = datetime.now(UTC).timestamp() - 3600
        for _ in range(3):  # closed attempts count toward no limit, and change nothing
            assert error_code(await service.vote("N01", phone(2))) == "voting_closed"
    written = {key async for key in redis.scan_iter(match="votesvc:{over:*")}
    assert written == {b"votesvc:{over:meta}", *(k.encode() for k in Keys("over", 16).markers())}


async def test_the_recorded_time_is_redis_time(service: Service, redis: Any) -> None:
    service.clock.now = 1_000_000_000.0  # this host's clock is far off
    before = int(datetime.now(UTC).timestamp() * 1000)
    assert (await service.vote("N01", phone(1))).status_code == 201
    after = int(datetime.now(UTC).timestamp() * 1000)
    [stream] = [key async for key in redis.scan_iter(match="*:votes") if await redis.xlen(key)]
    [(_, fields)] = await redis.xrange(stream)
    assert before - 1000 <= int(fields[b"ts"]) <= after + 1000


async def test_rejected_votes_change_nothing(service: Service, redis: Any) -> None:
    assert (await service.vote("N01", phone(1))).status_code == 201
    before = {key: await redis.dump(key) for key in await redis.keys("*:tally")}
    streams_before = [await redis.xlen(key) for key in await redis.keys("*:votes")]
    assert (await service.vote("N01", phone(1))).status_code == 409
    assert (await service.vote("N99", phone(2))).status_code == 404
    assert (await service.vote("N01", "bad")).status_code == 400
    after = {key: await redis.dump(key) for key in await redis.keys("*:tally")}
    assert after == before
    assert [await redis.xlen(key) for key in await redis.keys("*:votes")] == streams_before
    assert (await service.fresh_tally())["total"] == 1


async def test_unknown_route_and_method_are_json_errors(service: Service) -> None:
    missing = await service.client.get("/v2/nothing")
    assert missing.status_code == 404
    assert error_code(missing) == "not_found"
    wrong = await service.client.get("/v1/votes")
    assert wrong.status_code == 405
    assert error_code(wrong) == "method_not_allowed"


async def test_nominees_lists_the_campaign(service: Service) -> None:
    response = await service.client.get("/v1/nominees")
    assert response.status_code == 200
    body = response.json()
    assert body["campaign"]["id"] == "test-campaign"
    assert body["campaign"]["timezone"] == "Asia/Shanghai"
    assert body["campaign"]["rules"]["votes_per_phone_per_day"] == 10
    assert len(body["nominees"]) == 30
    assert body["nominees"][0] == {
        "id": "N01",
        "name": "Nominee 1",
        "trade": "fitter",
        "employer": "Works",
        "title": None,
        "bio": None,
        "photo_url": None,
    }


async def test_tally_ranks_and_totals(service: Service) -> None:
    for n, nominee in enumerate(["N03", "N03", "N03", "N02", "N02", "N05", "N05", "N01"]):
        assert (await service.vote(nominee, phone(n))).status_code == 201
    tally = await service.fresh_tally()
    assert tally["campaign"] == "test-campaign"
    assert tally["total"] == 8
    assert tally["stale"] is False
    assert tally["as_of"].endswith("+00:00")
    top = [(row["id"], row["votes"], row["rank"]) for row in tally["nominees"][:5]]
    assert top == [("N03", 3, 1), ("N02", 2, 2), ("N05", 2, 2), ("N01", 1, 4), ("N04", 0, 5)]
    assert len(tally["nominees"]) == 30
    assert {"id", "name", "trade", "votes", "rank"} == set(tally["nominees"][0])


async def test_tally_etag_and_304(service: Service) -> None:
    await service.app.state.api.board.refresh()
    first = await service.client.get("/v1/tally")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=1"
    unchanged = await service.client.get("/v1/tally", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    # a refresh without a new vote keeps the ETag
    await service.app.state.api.board.refresh()
    again = await service.client.get("/v1/tally", headers={"If-None-Match": etag})
    assert again.status_code == 304
    await service.vote("N01", phone(1))
    await service.app.state.api.board.refresh()
    changed = await service.client.get("/v1/tally", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    listed = await service.client.get(
        "/v1/tally", headers={"If-None-Match": f'"other", {changed.headers["etag"]}'}
    )
    assert listed.status_code == 304


async def test_etag_is_the_same_in_every_process(
    service: Service, redis_server: EmbeddedRedis, tmp_path: Any
) -> None:
    await service.vote("N04", phone(1))
    await service.app.state.api.board.refresh()
    mine = (await service.client.get("/v1/tally")).headers["etag"]
    async with running_service(redis_server.url, tmp_path / "other") as other:
        await other.app.state.api.board.refresh()
        assert (await other.client.get("/v1/tally")).headers["etag"] == mine


async def test_health_and_readiness(service: Service) -> None:
    health = await service.client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await service.client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body == {"status": "ready", "redis": body["redis"]}
    assert body["redis"]["policy"] == "noeviction"
    assert body["redis"]["used_memory"] > 0
    assert body["redis"]["maxmemory"] >= 0


async def test_readiness_refuses_a_redis_that_may_evict(
    own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    async with running_service(own_redis.url, tmp_path) as service:
        assert (await service.client.get("/readyz")).status_code == 200
        await service.app.state.redis.config_set("maxmemory-policy", "allkeys-lru")
        refused = await service.client.get("/readyz")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "unavailable"
        assert refused.json()["reason"] == "redis_may_evict"
        message = refused.json()["error"]["message"]
        assert "allkeys-lru" in message
        assert "VOTESVC_ALLOW_EVICTION" in message
    async with running_service(own_redis.url, tmp_path / "allowed", allow_eviction=True) as allowed:
        ready = await allowed.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["redis"]["policy"] == "allkeys-lru"


async def test_readiness_warns_once_when_redis_memory_runs_high(
    own_redis: EmbeddedRedis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_service(own_redis.url, tmp_path) as service:
        client = service.app.state.redis
        used = (await client.info("memory"))["used_memory"]
        limit = used * 11 // 10  # used memory is past 80 % of it
        await client.config_set("maxmemory", limit)
        with caplog.at_level(logging.WARNING, logger="votesvc.redismemory"):
            for _ in range(3):
                ready = await service.client.get("/readyz")
                assert ready.status_code == 200
                assert ready.json()["redis"]["maxmemory"] == limit
        warnings = [r for r in caplog.records if r.name == "votesvc.redismemory"]
        assert len(warnings) == 1
        assert f"of its maxmemory {limit} bytes" in warnings[0].getMessage()


PROXY = "10.0.0.2"  # a trusted proxy's address, as the socket peer


async def test_the_client_is_the_right_most_hop_of_a_long_forwarded_for(
    redis: Any, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(ip_limit=1, trusted_proxies=["10.0.0.0/8"])
    claims = ", ".join(f"198.18.{n // 256}.{n % 256}" for n in range(560))  # 8 KB of claims
    async with running_service(redis_server.url, tmp_path, campaign=campaign) as service:

        async def vote(number: int, forwarded: str) -> int:
            headers = {"X-Forwarded-For": forwarded}
            response = await service.vote("N01", phone(number), peer=PROXY, headers=headers)
            return response.status_code

        assert await vote(1, f"{claims}, 192.0.2.50") == 201
        assert await vote(2, "6.6.6.6, 192.0.2.50") == 429  # the same client
        assert await vote(3, f"{claims}, 192.0.2.51") == 201  # another one
        # Only the last 1 KiB is read: a client further left than that, behind
        # trusted hops, is not believed; the left-most trusted hop read counts.
        hidden = "192.0.2.60, " + ", ".join(["10.0.0.9"] * 200)
        assert await vote(4, hidden) == 201
        assert await vote(5, "10.0.0.9") == 429  # counted as the same client as the vote before


async def test_readiness_reloads_scripts_after_script_flush(service: Service, redis: Any) -> None:
    await redis.script_flush()
    assert (await service.client.get("/readyz")).status_code == 200
    assert (await redis.script_exists(service.app.state.api.caster.vote_script.sha)) == [True]


async def test_votes_survive_a_script_flush(service: Service, redis: Any) -> None:
    await redis.script_flush()
    assert (await service.vote("N01", phone(1))).status_code == 201


async def test_concurrent_mixed_requests_each_get_their_own_answer(service: Service) -> None:
    responses = await asyncio.gather(
        *(service.vote(f"N{(n % 30) + 1:02d}", phone(n)) for n in range(300))
    )
    assert [r.status_code for r in responses] == [201] * 300
    assert [r.json()["nominee"] for r in responses] == [f"N{(n % 30) + 1:02d}" for n in range(300)]
    assert len({r.json()["vote_id"] for r in responses}) == 300
