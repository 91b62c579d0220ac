"""The flushers' heartbeats: seen while they run (traffic or not), gone when they stop."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys

import pytest
import redis.asyncio as aioredis

from tests.ledger.test_flusher import OTHER_SCOPE, consumer_of, ended_pid
from tests.support import wait_for
from votesvc.keys import Keys
from votesvc.ledger.flusher import Flusher
from votesvc.ledger.heartbeat import consumer_name, live_flushers
from votesvc.ledger.store import Store
from votesvc.processes import pid_scope
from votesvc.settings import Settings

CAMPAIGN = "test-campaign"


@pytest.fixture
def keys() -> Keys:
    return Keys(CAMPAIGN, 16)


async def test_an_idle_flusher_keeps_beating_until_it_retires(
    redis: aioredis.Redis, store: Store, keys: Keys
) -> None:
    flusher = Flusher(redis, store, keys, Settings(flush_interval=0.2), consumer="idlehost-1")
    stop = asyncio.Event()
    task = asyncio.create_task(flusher.run(stop))
    try:

        async def seen() -> bool:
            return "idlehost-1" in await live_flushers(redis, keys, within=1.0)

        await wait_for(seen, within=5.0)
        first = await redis.hget(keys.flushers(), "idlehost-1")

        async def beat_again() -> bool:
            return await redis.hget(keys.flushers(), "idlehost-1") != first

        await wait_for(beat_again, within=5.0)  # no vote, and it still says it runs
        assert await live_flushers(redis, keys, within=1.0, besides="idlehost-1") == {}
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    await flusher.retire()
    assert await redis.hgetall(keys.flushers()) == {}


async def test_only_recent_entries_of_running_processes_count(
    redis: aioredis.Redis, keys: Keys
) -> None:
    seconds, micros = await redis.time()
    now = seconds * 1000 + micros // 1000
    ended = ended_pid()
    dead_here = consumer_of(ended, pid_scope())
    elsewhere = consumer_of(ended, OTHER_SCOPE)  # same host and pid, another pid namespace
    before_scopes = consumer_of(ended, None)
    await redis.hset(
        keys.flushers(),
        mapping={
            "otherhost-1": now - 500,
            "otherhost-2": now - 60_000,  # silent for a minute
            "restorer-7": now,  # the caller itself
            dead_here: now,  # its process has ended: dead without waiting
            elsewhere: now,  # its pid says nothing here: judged by its heartbeat
            before_scopes: now,  # likewise
            "ancient-3": now - 7200_000,  # silent for two hours: forgotten
        },
    )
    live = await live_flushers(redis, keys, within=5.0, besides="restorer-7")
    assert set(live) == {"otherhost-1", elsewhere, before_scopes}
    assert 0.4 <= live["otherhost-1"] < 5.0
    assert not await redis.hexists(keys.flushers(), "ancient-3")
    assert await redis.hexists(keys.flushers(), "otherhost-2")


NAME_IN_A_CHILD = "from votesvc.ledger.heartbeat import consumer_name; print(consumer_name())"


def test_a_consumer_name_is_host_pid_nonce_and_pid_scope() -> None:
    host, scope = re.escape(socket.gethostname()), pid_scope()
    form = re.compile(rf"{host}-(?P<pid>[0-9]+)-(?P<nonce>[0-9a-f]{{8}})@{scope}")
    name = consumer_name()
    ours = form.fullmatch(name)
    assert ours is not None
    assert int(ours["pid"]) == os.getpid()
    assert consumer_name() == name  # one per process
    # Processes that share a hostname and a pid (pid 1 of every container) differ by the nonce.
    children = [
        subprocess.run(
            [sys.executable, "-c", NAME_IN_A_CHILD], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    nonces = {ours["nonce"]}
    for child in children:
        match = form.fullmatch(child)
        assert match is not None
        nonces.add(match["nonce"])
    assert len(nonces) == 3
