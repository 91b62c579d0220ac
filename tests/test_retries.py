"""Honest 503s and idempotent retries: what a client may conclude, and how it finds out.

A ``503`` means the vote may have been counted: Redis ran it, but its reply came
after the caller's timeout. Retried with the same ``Idempotency-Key`` it gets its
real outcome; a vote that Redis ran only past its deadline changed nothing.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.delay_proxy import DelayProxy
from tests.support import Service, make_campaign, phone, running_service, wait_for
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

SHIPPED_TIMEOUT = Settings().redis_timeout


def keyed(key: str) -> dict[str, Any]:
    return {"headers": {"Idempotency-Key": key}}


async def counted(redis: Any) -> tuple[int, int]:
    """(votes in the tallies, entries in the streams) of the whole Redis."""
    tally = 0
    async for key in redis.scan_iter(match="*:tally"):
        tally += sum(int(v) for v in (await redis.hgetall(key)).values())
    entries = 0
    async for key in redis.scan_iter(match="*:votes"):
        entries += await redis.xlen(key)
    return tally, entries


async def test_a_key_already_accepted_gets_the_same_201_and_counts_once(
    service: Service, redis: aioredis.Redis
) -> None:
    first = await service.vote("N01", phone(1), **keyed("click-1"))
    assert first.status_code == 201
    for _ in range(3):
        again = await service.vote("N01", phone(1), **keyed("click-1"))
        assert again.status_code == 201
        assert again.json() == first.json()
    assert await counted(redis) == (1, 1)
    # Another key is another vote: already voted for N01 today.
    other = await service.vote("N01", phone(1), **keyed("click-2"))
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "already_voted"


async def test_the_same_key_for_another_nominee_is_a_conflict(
    service: Service, redis: aioredis.Redis
) -> None:
    assert (await service.vote("N01", phone(1), **keyed("k_1-A"))).status_code == 201
    conflict = await service.vote("N02", phone(1), **keyed("k_1-A"))
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert await counted(redis) == (1, 1)
    # Keys belong to a phone: another phone may use the same one.
    assert (await service.vote("N02", phone(2), **keyed("k_1-A"))).status_code == 201


@pytest.mark.parametrize("key", ["", "a" * 65, "has space", "é", "a/b", "a,b", "a:b"])
async def test_a_malformed_key_is_an_invalid_request_and_changes_nothing(
    service: Service, redis: aioredis.Redis, key: str
) -> None:
    response = await service.client.post(
        "/v1/votes",
        json={"nominee": "N01", "phone": phone(1)},
        headers={b"Idempotency-Key": key.encode()},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert await counted(redis) == (0, 0)


async def test_a_replay_counts_toward_no_limit_whatever_they_say(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Any
) -> None:
    campaign = make_campaign(votes_per_phone_per_day=2, phone_burst_limit=3)
    async with running_service(redis_server.url, tmp_path, campaign=campaign) as service:
        first = await service.vote("N01", phone(1), **keyed("a" * 64))
        assert first.json()["remaining_today"] == 1
        for _ in range(5):  # past the burst limit of 3: replays are not attempts
            assert (await service.vote("N01", phone(1), **keyed("a" * 64))).json() == first.json()
        second = await service.vote("N02", phone(1), **keyed("b"))
        assert second.status_code == 201
        assert second.json()["remaining_today"] == 0
        # The day's votes are used up, and still the keys answer as they did.
        assert (await service.vote("N03", phone(1))).json()["error"]["code"] == "daily_limit"
        assert (await service.vote("N01", phone(1), **keyed("a" * 64))).json() == first.json()
        assert (await service.vote("N02", phone(1), **keyed("b"))).json() == second.json()
    # Voting has closed since: a remembered key still gets its 201, a new one does not.
    over = make_campaign(
        votes_per_phone_per_day=2,
        opens_at="2026-01-01T00:00:00+08:00",
        closes_at="2026-01-02T00:00:00+08:00",
    )
    async with running_service(redis_server.url, tmp_path, campaign=over) as service:
        assert (await service.vote("N01", phone(1), **keyed("a" * 64))).json() == first.json()
        closed = await service.vote("N04", phone(1), **keyed("c"))
        assert closed.json()["error"]["code"] == "voting_closed"
    assert await counted(redis) == (2, 2)


async def test_a_503_from_a_late_reply_was_counted_and_a_keyed_retry_says_so(
    own_redis: EmbeddedRedis, tmp_path: Any
) -> None:
    direct = aioredis.Redis(unix_socket_path=str(own_redis.socket))
    async with (
        DelayProxy(own_redis.socket) as proxy,
        running_service(proxy.url, tmp_path, redis_timeout=SHIPPED_TIMEOUT) as service,
    ):
        proxy.delay = 0.7  # Redis runs the vote at once; its reply comes after the timeout
        first = await service.vote("N05", phone(1), **keyed("tap-1"))
        assert first.status_code == 503

        async def landed() -> bool:
            return await counted(direct) == (1, 1)

        await wait_for(landed, within=5)  # the 503'd vote was counted
        proxy.delay = 0
        retry = await service.vote("N05", phone(1), **keyed("tap-1"))
        assert retry.status_code == 201
        [stream] = [
            key async for key in direct.scan_iter(match="*:votes") if await direct.xlen(key)
        ]
        entries: Any = await direct.xrange(stream)
        [(_, fields)] = entries
        assert retry.json() == {
            "vote_id": fields[b"id"].decode(),
            "nominee": "N05",
            "remaining_today": 9,
        }
        assert await counted(direct) == (1, 1)
    await direct.aclose()


async def test_a_stall_on_a_processs_first_batch_counts_nothing(
    own_redis: EmbeddedRedis, tmp_path: Any
) -> None:
    direct = aioredis.Redis(unix_socket_path=str(own_redis.socket))
    async with running_service(own_redis.url, tmp_path, redis_timeout=SHIPPED_TIMEOUT) as service:
        pid = own_redis.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # before this process's first vote
        try:
            stalled = await service.vote("N01", phone(1), **keyed("first"))
        finally:
            os.kill(pid, signal.SIGCONT)
        assert stalled.status_code == 503

        async def answered() -> bool:
            return (await service.vote("N02", phone(2))).status_code == 201

        await wait_for(answered, within=5)
        # Redis ran the stalled call when it woke, past its deadline: nothing of it counts,
        # and the retry is a fresh vote.
        assert await counted(direct) == (1, 1)
        retry = await service.vote("N01", phone(1), **keyed("first"))
        assert retry.status_code == 201
        assert await counted(direct) == (2, 2)
    await direct.aclose()
