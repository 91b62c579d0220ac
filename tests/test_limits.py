"""Dedup, daily quotas, burst and IP limits, through the HTTP interface."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from tests.support import SECRET, FakeClock, Service, make_campaign, phone, running_service
from votesvc.keys import Keys
from votesvc.phones import hash_phone
from votesvc.redis_server import EmbeddedRedis


def code(response: Any) -> str:
    result: str = response.json()["error"]["code"]
    return result


async def test_200_simultaneous_identical_votes_count_once(service: Service) -> None:
    responses = await asyncio.gather(*(service.vote("N07", phone(7)) for _ in range(200)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 1
    assert set(statuses) <= {201, 409, 429}
    tally = await service.fresh_tally()
    assert tally["total"] == 1


async def test_twelve_nominees_from_one_phone_give_ten_then_daily_limit(service: Service) -> None:
    statuses = []
    for n in range(1, 13):
        response = await service.vote(f"N{n:02d}", phone(1))
        statuses.append(response.status_code)
        if n <= 10:
            assert response.json()["remaining_today"] == 10 - n
    assert statuses == [201] * 10 + [429, 429]
    last = await service.vote("N12", phone(1))
    assert code(last) == "daily_limit"
    # noon in Shanghai: the next campaign day starts in 12 hours
    assert int(last.headers["retry-after"]) == 12 * 3600
    assert (await service.fresh_tally())["total"] == 10


async def test_already_voted_wins_over_daily_limit(service: Service) -> None:
    for n in range(1, 11):
        assert (await service.vote(f"N{n:02d}", phone(1))).status_code == 201
    assert code(await service.vote("N01", phone(1))) == "already_voted"
    assert code(await service.vote("N11", phone(1))) == "daily_limit"


async def test_the_day_turns_at_midnight_in_the_campaign_time_zone(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    # 23:59:58 in Shanghai is 15:59:58 UTC: a UTC day would not turn here.
    clock = FakeClock(datetime.fromisoformat("2026-06-15T23:59:58+08:00").timestamp())
    campaign = make_campaign(votes_per_phone_per_day=2)
    async with running_service(redis_server.url, tmp_path, campaign=campaign, clock=clock) as svc:
        assert (await svc.vote("N01", phone(1))).status_code == 201
        assert (await svc.vote("N02", phone(1))).status_code == 201
        limited = await svc.vote("N03", phone(1))
        assert code(limited) == "daily_limit"
        assert limited.headers["retry-after"] == "2"
        assert code(await svc.vote("N01", phone(1))) == "already_voted"
        clock.advance(2)  # 00:00:00 on the 16th
        again = await svc.vote("N01", phone(1))
        assert again.status_code == 201
        assert again.json()["remaining_today"] == 1
        assert (await svc.fresh_tally())["total"] == 3


async def test_votes_per_nominee_per_day_above_one(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(votes_per_nominee_per_phone_per_day=3, votes_per_phone_per_day=5)
    async with running_service(redis_server.url, tmp_path, campaign=campaign) as svc:
        assert [(await svc.vote("N01", phone(1))).status_code for _ in range(4)] == [
            201,
            201,
            201,
            409,
        ]
        assert [(await svc.vote("N02", phone(1))).status_code for _ in range(3)] == [201, 201, 429]


async def test_phone_burst_limit_and_its_window(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(phone_burst_limit=3, phone_burst_seconds=10)
    async with running_service(redis_server.url, tmp_path, campaign=campaign) as svc:
        for n in range(1, 4):
            assert (await svc.vote(f"N{n:02d}", phone(1))).status_code == 201
            svc.clock.advance(1)
        limited = await svc.vote("N04", phone(1))
        assert limited.status_code == 429
        assert code(limited) == "rate_limited"
        # the first attempt (t=0) leaves the window at t=10; now t=3
        assert limited.headers["retry-after"] == "7"
        # another phone is not affected
        assert (await svc.vote("N04", phone(2))).status_code == 201
        # burst beats already_voted: the limited phone asking again is still "too fast"
        assert code(await svc.vote("N01", phone(1))) == "rate_limited"
        svc.clock.advance(7)
        assert (await svc.vote("N04", phone(1))).status_code == 201
        assert (await svc.fresh_tally())["total"] == 5


async def test_rejected_attempts_count_toward_the_burst_window(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(phone_burst_limit=2, phone_burst_seconds=10)
    async with running_service(redis_server.url, tmp_path, campaign=campaign) as svc:
        assert (await svc.vote("N01", phone(1))).status_code == 201
        assert code(await svc.vote("N01", phone(1))) == "already_voted"
        assert code(await svc.vote("N02", phone(1))) == "rate_limited"


async def test_the_burst_window_starts_afresh_with_the_campaign_day(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    clock = FakeClock(datetime.fromisoformat("2026-06-15T23:59:58+08:00").timestamp())
    campaign = make_campaign(phone_burst_limit=2, phone_burst_seconds=10)
    async with running_service(redis_server.url, tmp_path, campaign=campaign, clock=clock) as svc:
        assert (await svc.vote("N01", phone(1))).status_code == 201
        assert (await svc.vote("N02", phone(1))).status_code == 201
        assert code(await svc.vote("N03", phone(1))) == "rate_limited"
        clock.advance(2)  # 00:00:00 on the 16th: a new day record, an empty window
        assert (await svc.vote("N03", phone(1))).status_code == 201
        assert (await svc.vote("N04", phone(1))).status_code == 201
        assert code(await svc.vote("N05", phone(1))) == "rate_limited"


async def test_ip_limit_counts_per_peer(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(ip_limit=3, ip_limit_seconds=60)
    async with running_service(redis_server.url, tmp_path, campaign=campaign) as svc:
        for n in range(3):
            assert (await svc.vote("N01", phone(n), peer="203.0.113.9")).status_code == 201
        limited = await svc.vote("N01", phone(9), peer="203.0.113.9")
        assert limited.status_code == 429
        assert code(limited) == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 120
        # IP limit is decided before already_voted
        assert code(await svc.vote("N01", phone(0), peer="203.0.113.9")) == "rate_limited"
        assert (await svc.vote("N01", phone(9), peer="203.0.113.10")).status_code == 201
        # a whole minute later the previous window still weighs in, two minutes later it is gone
        svc.clock.advance(120)
        assert (await svc.vote("N02", phone(9), peer="203.0.113.9")).status_code == 201
        assert (await svc.fresh_tally())["total"] == 5


async def test_ip_limit_in_one_batch(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(ip_limit=5, ip_limit_seconds=60)
    async with running_service(redis_server.url, tmp_path, campaign=campaign) as svc:
        responses = await asyncio.gather(
            *(svc.vote("N01", phone(n), peer="203.0.113.9") for n in range(12))
        )
        assert sorted(r.status_code for r in responses) == [201] * 5 + [429] * 7
        assert (await svc.fresh_tally())["total"] == 5


async def test_ipv6_clients_are_limited_per_64(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(ip_limit=2, ip_limit_seconds=60)
    async with running_service(redis_server.url, tmp_path, campaign=campaign) as svc:
        assert (await svc.vote("N01", phone(1), peer="2001:db8:1:2::1")).status_code == 201
        assert (await svc.vote("N01", phone(2), peer="2001:db8:1:2:ffff::9")).status_code == 201
        same_64 = await svc.vote("N01", phone(3), peer="2001:db8:1:2:abcd::7")
        assert code(same_64) == "rate_limited"
        assert (await svc.vote("N01", phone(3), peer="2001:db8:1:3::1")).status_code == 201


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(ip_limit=2, ip_limit_seconds=60)
    async with running_service(redis_server.url, tmp_path, campaign=campaign) as svc:
        for n in range(2):
            forged = {"X-Forwarded-For": f"192.0.2.{n}"}
            response = await svc.vote("N01", phone(n), peer="203.0.113.9", headers=forged)
            assert response.status_code == 201
        forged = {"X-Forwarded-For": "192.0.2.77"}
        response = await svc.vote("N01", phone(5), peer="203.0.113.9", headers=forged)
        assert code(response) == "rate_limited"


async def test_forwarded_for_from_a_trusted_proxy_counts_the_client(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(ip_limit=1, ip_limit_seconds=60, trusted_proxies=["10.0.0.0/8"])
    async with running_service(redis_server.url, tmp_path, campaign=campaign) as svc:
        via = "10.1.1.1"
        first = {"X-Forwarded-For": "192.0.2.5, 198.51.100.1"}
        assert (await svc.vote("N01", phone(1), peer=via, headers=first)).status_code == 201
        # same right-most untrusted client, different spoofed left part: limited
        again = {"X-Forwarded-For": "1.2.3.4, 198.51.100.1, 10.9.9.9"}
        assert code(await svc.vote("N01", phone(2), peer=via, headers=again)) == "rate_limited"
        other = {"X-Forwarded-For": "198.51.100.2"}
        assert (await svc.vote("N01", phone(3), peer=via, headers=other)).status_code == 201


async def test_tally_total_equals_the_201s_under_mixed_load(service: Service) -> None:
    attempts = [service.vote(f"N{(n * 7) % 30 + 1:02d}", phone(n % 40)) for n in range(600)]
    responses = await asyncio.gather(*attempts)
    accepted = sum(r.status_code == 201 for r in responses)
    assert accepted > 0
    assert {r.status_code for r in responses} <= {201, 409, 429}
    tally = await service.fresh_tally()
    assert tally["total"] == accepted
    assert sum(row["votes"] for row in tally["nominees"]) == accepted


async def test_no_raw_phone_number_is_stored_in_redis(
    service: Service, redis: aioredis.Redis
) -> None:
    rng = random.Random(20261121)
    numbers = [f"1{rng.randint(3, 9)}{rng.randrange(10**9):09d}" for _ in range(20)]
    for n, number in enumerate(numbers):
        assert (await service.vote(f"N{n % 30 + 1:02d}", number)).status_code == 201
    await service.vote("N01", numbers[0])  # a rejected attempt leaves a burst entry
    dump = []
    async for key in redis.scan_iter("*"):
        dump.append(key)
        kind_reply: Any = await redis.type(key)
        kind = kind_reply.decode()
        if kind == "string":
            dump.append(await redis.get(key))
        elif kind == "hash":
            fields: Any = await redis.hgetall(key)
            for field, value in fields.items():
                dump += [field, value]
        elif kind == "stream":
            entries: Any = await redis.xrange(key)
            for _, entry in entries:
                for field, value in entry.items():
                    dump += [field, value]
        else:
            raise AssertionError(f"unexpected key type {kind} for {key!r}")
    blob = b"\n".join(dump)
    assert blob, "expected some data in Redis"
    for number in numbers:
        assert number.encode() not in blob
        assert number[2:].encode() not in blob  # not even without its prefix


async def test_day_records_expire_after_the_campaign_day(
    service: Service, redis: aioredis.Redis
) -> None:
    assert (await service.vote("N01", phone(1))).status_code == 201
    day_keys = [key async for key in redis.scan_iter("*:day:*")]
    assert len(day_keys) == 1
    ttl = await redis.ttl(day_keys[0])
    # noon in Shanghai: 12 hours until midnight, plus a minute of grace
    assert 12 * 3600 <= ttl <= 12 * 3600 + 60
    # the phone's record: the code of N01, then its attempt inside the burst window
    record = await redis.hget(day_keys[0], Keys.phone_key(hash_phone(SECRET, phone(1))))
    assert record == f"A:{int(service.clock() * 1000)}".encode()
    # the day hash, a tally hash, a stream and the IP's window: no key per phone
    # (beside the campaign's own: its mirror and the shards' markers)
    campaign_keys = {service.app.state.keys.meta(), *service.app.state.keys.markers()}
    every: Any = await redis.keys("*")
    assert len({key.decode() for key in every} - campaign_keys) == 4


async def test_a_day_record_without_an_expiry_gets_it_back(
    service: Service, redis: aioredis.Redis
) -> None:
    # The vote script sets the day hash's expiry only where it has none (the moment
    # is the day's end whenever it is set): one lost (PERSIST, an old restore) comes back.
    assert (await service.vote("N01", phone(1))).status_code == 201
    day_keys = [key async for key in redis.scan_iter("*:day:*")]
    assert await redis.persist(day_keys[0])
    assert await redis.ttl(day_keys[0]) == -1
    assert (await service.vote("N02", phone(1))).status_code == 201  # the same day hash
    assert 12 * 3600 <= await redis.ttl(day_keys[0]) <= 12 * 3600 + 60
