"""GET /v1/tally/stream over real HTTP: first event, pushes, pace, heartbeat, bound, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from tests.live_server import LiveServer
from tests.localhost import free_port, wait_until
from tests.support import (
    SECRET,
    FakeClock,
    campaign_toml,
    make_campaign,
    phone,
    set_up_campaign_now,
    wait_for,
)
from votesvc.app import create_app
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings
from votesvc.sse import TallyStream


class EventReader:
    """Reads a ``text/event-stream`` response one event (or comment) at a time.

    A reader must live as long as its stream: it holds the response's line
    iterator, an async generator, and when a part-read one is dropped asyncio
    closes it, which makes httpx close the response and its connection; the
    server then sees the client leave. :func:`open_stream` ties the two together.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next(self, within: float = 5.0) -> tuple[str, Any]:
        """``("data", parsed JSON)`` or ``("comment", text)``."""
        data: list[str] = []
        async with asyncio.timeout(within):
            async for line in self.lines:
                if line.startswith(":"):
                    return "comment", line[1:].strip()
                if line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                elif line == "" and data:
                    return "data", orjson.loads("\n".join(data))
        raise EOFError("the stream ended")

    async def next_data(self, within: float = 5.0) -> dict[str, Any]:
        while True:
            kind, value = await self.next(within)
            if kind == "data":
                result: dict[str, Any] = value
                return result


@contextlib.asynccontextmanager
async def open_stream(http: httpx.AsyncClient, url: str) -> AsyncIterator[EventReader]:
    """``GET url`` as a stream, read through one reader that lives as long as the block."""
    async with http.stream("GET", url) as response:
        yield EventReader(response)


@pytest.fixture
def live_factory(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> Iterator[Any]:
    servers: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        settings = Settings(
            data_dir=tmp_path,
            redis_url=redis_server.url,
            secret=b"test-secret",
            flush_in_serve=False,
            tally_refresh=overrides.pop("tally_refresh", 0.05),
            **overrides,
        )
        campaign = make_campaign()
        set_up_campaign_now(settings, campaign)
        app = create_app(settings, campaign=campaign, clock=FakeClock())
        server = LiveServer(app).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


async def cast(http: httpx.AsyncClient, server: LiveServer, nominee: str, n: int) -> None:
    response = await http.post(
        f"{server.url}/v1/votes", json={"nominee": nominee, "phone": phone(n)}
    )
    assert response.status_code == 201, response.text


async def test_first_event_is_the_current_snapshot(
    live_factory: Any, client: httpx.AsyncClient
) -> None:
    server = live_factory()
    await cast(client, server, "N07", 1)
    await wait_for(lambda: _total_is(client, server, 1))
    tally = (await client.get(f"{server.url}/v1/tally")).json()
    async with open_stream(client, f"{server.url}/v1/tally/stream") as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["cache-control"] == "no-store"
        first = await stream.next_data(within=2)
    assert first == tally


async def test_changes_are_pushed_at_most_twice_a_second(
    live_factory: Any, client: httpx.AsyncClient
) -> None:
    server = live_factory(tally_refresh=0.05)
    votes = 40
    async with open_stream(client, f"{server.url}/v1/tally/stream") as reader:
        assert (await reader.next_data())["total"] == 0

        async def vote_steadily() -> None:
            for n in range(votes):  # about 2 s of changes, one every 50 ms
                await cast(client, server, "N03", n)
                await asyncio.sleep(0.05)

        started = time.monotonic()
        voter = asyncio.create_task(vote_steadily())
        totals: list[int] = []
        while not totals or totals[-1] < votes:
            totals.append((await reader.next_data())["total"])
        elapsed = time.monotonic() - started
        await voter
    assert totals == sorted(totals)
    assert len(totals) >= 3, "the stream should push while the votes come in, not only at the end"
    # One event at most per 0.5 s per stream: the first may go at once.
    assert len(totals) <= elapsed / 0.5 + 1, (len(totals), elapsed)


async def test_idle_stream_gets_heartbeats(live_factory: Any, client: httpx.AsyncClient) -> None:
    server = live_factory(sse_heartbeat=0.2)
    async with open_stream(client, f"{server.url}/v1/tally/stream") as reader:
        await reader.next_data()
        assert await reader.next(within=3) == ("comment", "heartbeat")


async def test_open_streams_are_bounded(live_factory: Any, client: httpx.AsyncClient) -> None:
    server = live_factory(sse_max=2)
    streams: TallyStream = server.app.state.streams
    url = f"{server.url}/v1/tally/stream"
    async with open_stream(client, url) as first, open_stream(client, url) as second:
        await first.next_data()
        await second.next_data()
        # Streamed, so a stream admitted by mistake fails on its status, not as a read timeout.
        async with client.stream("GET", url) as refused:
            assert refused.status_code == 503
            await refused.aread()
        assert refused.json()["error"]["code"] == "unavailable"
        assert int(refused.headers["retry-after"]) >= 1
    await wait_for(lambda: _is(streams.open_streams == 0))
    async with open_stream(client, url) as again:
        assert again.response.status_code == 200
        await again.next_data()


async def test_stream_follows_redis_down_and_back(
    tmp_path: Path, client: httpx.AsyncClient, own_redis: EmbeddedRedis
) -> None:
    settings = Settings(
        data_dir=tmp_path, redis_url=own_redis.url, secret=b"s", flush_in_serve=False
    )
    server = LiveServer(create_app(settings, campaign=make_campaign(), clock=FakeClock())).start()
    try:
        async with open_stream(client, f"{server.url}/v1/tally/stream") as reader:
            assert (await reader.next_data())["stale"] is False
            await asyncio.to_thread(own_redis.stop)
            assert (await reader.next_data())["stale"] is True
            await asyncio.to_thread(own_redis.start)
            assert (await reader.next_data(within=10))["stale"] is False
    finally:
        server.stop()


async def _total_is(client: httpx.AsyncClient, server: LiveServer, total: int) -> bool:
    response = await client.get(f"{server.url}/v1/tally")
    return response.status_code == 200 and response.json()["total"] == total


async def _is(condition: bool) -> bool:
    return condition


# -- graceful shutdown of a real `votesvc serve` ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_ends_open_streams_and_the_server_exits(
    workers: int, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = tmp_path / "campaign.toml"
    campaign.write_text(campaign_toml())
    port = free_port()
    env = {
        **os.environ,
        "VOTESVC_REDIS_URL": redis_server.url,
        "VOTESVC_DATA_DIR": str(tmp_path / "data"),
        "VOTESVC_CAMPAIGN": str(campaign),
        "VOTESVC_SECRET": SECRET.decode(),
        "VOTESVC_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "votesvc", "serve", "--port", str(port)]
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # a failed test kills the workers too (they flush!)
        )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=5) as http:
            _wait_until_serving(http, url, process)
            streams = [http.stream("GET", f"{url}/v1/tally/stream") for _ in range(3)]
            responses = [stream.__enter__() for stream in streams]
            lines = [response.iter_lines() for response in responses]
            for response, read in zip(responses, lines, strict=True):
                assert response.status_code == 200
                assert next(read).startswith("retry:")
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            status = process.wait(timeout=8)
            elapsed = time.monotonic() - started
            for read in lines:  # each stream ended cleanly, no error
                for _ in read:
                    pass
            for stream in streams:
                stream.__exit__(None, None, None)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    errors = log.read_text()
    assert status == 0, errors
    assert elapsed < 4, f"shutdown took {elapsed:.1f}s with open streams"
    assert "Waiting for connections to close" not in errors
    assert "timeout graceful shutdown exceeded" not in errors


def _wait_until_serving(http: httpx.Client, url: str, process: subprocess.Popen[bytes]) -> None:
    def serving() -> bool:
        assert process.poll() is None, "votesvc serve exited at start-up"
        try:
            # Every worker has its first snapshot: with several, any of them may
            # take the next connection, and one without a snapshot answers 503.
            return all(http.get(f"{url}/v1/tally").status_code == 200 for _ in range(8))
        except httpx.TransportError:
            return False

    wait_until(serving, 20, "votesvc serve answering")
