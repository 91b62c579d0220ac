"""Redis going away mid-test: fail fast with 503, serve stale tallies, recover."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from tests.support import phone, running_service, wait_for
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

SHIPPED_TIMEOUT = Settings().redis_timeout  # the fail-fast budget these tests are about


async def test_redis_stopped_gives_503_fast_and_the_service_recovers(
    own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    async with running_service(own_redis.url, tmp_path, redis_timeout=SHIPPED_TIMEOUT) as svc:
        assert (await svc.vote("N01", phone(1))).status_code == 201
        await svc.app.state.api.board.refresh()
        fresh = await svc.client.get("/v1/tally")
        assert fresh.json()["stale"] is False

        own_redis.stop()
        started = time.monotonic()
        down = await svc.vote("N02", phone(2))
        elapsed = time.monotonic() - started
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "unavailable"
        assert int(down.headers["retry-after"]) >= 1
        assert elapsed < 1.0
        assert (await svc.client.get("/readyz")).status_code == 503
        assert (await svc.client.get("/healthz")).status_code == 200

        await svc.app.state.api.board.refresh()
        stale = await svc.client.get("/v1/tally")
        assert stale.status_code == 200
        assert stale.json()["stale"] is True
        assert stale.json()["total"] == 1
        # a client holding the fresh ETag learns that the data went stale
        assert stale.headers["etag"] != fresh.headers["etag"]

        own_redis.start()

        async def voting_again() -> bool:
            return (await svc.vote("N03", phone(3))).status_code == 201

        await wait_for(voting_again, within=5)
        assert (await svc.client.get("/readyz")).status_code == 200
        tally = await svc.fresh_tally()
        assert tally["stale"] is False
        # AOF kept the vote cast before the stop
        assert tally["total"] == 2


async def test_tally_is_503_when_redis_was_never_reachable(tmp_path: Path) -> None:
    missing = f"unix://{tmp_path}/nothing.sock"
    async with running_service(missing, tmp_path, redis_timeout=SHIPPED_TIMEOUT) as svc:
        response = await svc.client.get("/v1/tally")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"
        started = time.monotonic()
        vote = await svc.vote("N01", phone(1))
        assert vote.status_code == 503
        assert time.monotonic() - started < 1.0


async def test_a_stalled_redis_gives_503_within_a_second_and_counts_none_of_them(
    own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    async with running_service(own_redis.url, tmp_path, redis_timeout=SHIPPED_TIMEOUT) as svc:
        assert (await svc.vote("N01", phone(0))).status_code == 201
        pid = own_redis.pid()
        assert pid is not None

        async def timed_vote(n: int) -> tuple[int, float]:
            started = time.monotonic()
            response = await svc.vote(f"N{n % 30 + 1:02d}", phone(100 + n))
            return response.status_code, time.monotonic() - started

        os.kill(pid, signal.SIGSTOP)  # alive but answering nothing
        try:
            results = await asyncio.gather(*(timed_vote(n) for n in range(60)))
        finally:
            os.kill(pid, signal.SIGCONT)
        assert {status for status, _ in results} == {503}
        assert max(elapsed for _, elapsed in results) < 1.0

        async def voting_again() -> bool:
            return (await svc.vote("N02", phone(1))).status_code == 201

        await wait_for(voting_again, within=5)
        # The stalled server ran the queued scripts once it woke up, past their
        # deadline: none of the votes answered 503 was counted.
        assert (await svc.fresh_tally())["total"] == 2
