"""Redis alone: how fast ``cast_vote.lua`` runs, and what a phone's day weighs.

Both go through votesvc's own vote path, so they follow ``cast_vote.lua`` and
``votesvc/votes.py`` when those change: redis-benchmark repeats the very call a
:class:`~votesvc.votes.VoteCaster` makes, and the memory figure weighs what the
caster's votes leave in a fresh Redis, nothing written here by hand.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio as aioredis

from loadtest.bench.campaign import CAMPAIGN_ID, SECRET, bench_campaign
from loadtest.bench.processes import Pinning
from votesvc.campaign import Campaign, Nominee
from votesvc.connection import RedisClient, connect
from votesvc.days import campaign_day
from votesvc.keys import Keys
from votesvc.meta import write_markers
from votesvc.phones import PhoneHasher
from votesvc.redis_server import EmbeddedRedis
from votesvc.scripts import load_script
from votesvc.settings import Settings
from votesvc.votes import ACCEPTED, VoteCaster

SHARDS = Settings().shards  # as the benchmark's server runs
IP_HASH = "e" * 16  # all the load comes from one address
# redis-benchmark puts a fresh random number in each __rand_int__ of every call;
# the caster is handed a hex stand-in of the same length in its place.
RAND_INT = "__rand_int__"
RAND_STAND_IN = "c0ffeec0ffee"
PHONES_PER_ROUND = 10_000  # the memory fill casts this many phones' votes at a time


@dataclass
class RedisFigures:
    script_rate: float = 0.0
    batch_rate: float = 0.0
    batch: int = 16
    bytes_per_phone_day: float = 0.0
    bytes_per_phone_day_usage: float = 0.0
    bytes_per_phone_day_keyed: float = 0.0  # every vote with an Idempotency-Key
    calls_per_batch: int = 0  # Redis calls one batch of votes costs (single Redis)
    calls_per_batch_keyed: int = 0
    codes_per_phone_day: float = 0.0
    bytes_per_stream_entry: float = 0.0
    voters: int = 0


def tally_total(client: redis.Redis, keys: Keys) -> int:
    pipe = client.pipeline()
    for key in keys.tallies():
        pipe.hvals(key)
    return sum(int(v) for values in pipe.execute() for v in values)


# --- redis-benchmark ------------------------------------------------------------------


class _Tap:
    """The caster's Redis client, passed through, counting (and keeping) each EVALSHA."""

    def __init__(self, client: Any, *, keep: bool = True) -> None:
        self._client = client
        self._keep = keep
        self.calls: list[list[str]] = []
        self.counted = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        self.counted += 1
        if self._keep:
            self.calls.append([str(numkeys), *map(str, keys_and_args)])
        return await self._client.evalsha(sha, numkeys, *keys_and_args)


async def cast_vote_call(
    socket: Path, campaign: Campaign, keys: Keys, ballots: list[tuple[Nominee, str, str]]
) -> list[str]:
    """The numkeys, KEYS and ARGV of the cast_vote.lua call a caster makes for ``ballots``.

    Each ballot is (nominee, phone hash, IP hash). The call runs once, for real
    (whatever its outcome: the same stand-in phones may have voted already).
    """
    # One batch, and a timeout far longer than redis-benchmark repeats the call:
    # the deadline the caster puts in it (most of the timeout) must not pass.
    settings = Settings(batch_max=len(ballots), redis_timeout=3600.0)
    async with aioredis.Redis(unix_socket_path=str(socket)) as client:
        tap = _Tap(client)
        caster = VoteCaster(cast(RedisClient, tap), campaign, keys, time.time, settings)
        await caster.vote_script.register(client)
        await write_markers(client, keys)  # as a ledger process marks a campaign's Redis
        await asyncio.gather(*(caster.cast(*ballot) for ballot in ballots))
    if len(tap.calls) != 1:
        raise SystemExit(f"bench: the caster cast one batch in {len(tap.calls)} calls")
    return tap.calls[0]


def redis_benchmark(server: EmbeddedRedis, pinning: Pinning, requests: int, batch: int) -> float:
    """Votes per second through cast_vote.lua, ``batch`` votes per EVALSHA, 16 pipelined."""
    script = load_script("cast_vote")
    campaign = bench_campaign()
    keys = Keys("redis-bench", SHARDS)  # not the bench campaign: the flusher leaves it alone
    # Every vote a new phone, all of them in one shard (the hex digit after the
    # stand-in) and from one address, as the server would send them.
    nominees = campaign.nominees
    ballots = [
        (nominees[i % len(nominees)], f"{i:02x}{RAND_STAND_IN}".ljust(64, "f"), IP_HASH)
        for i in range(batch)
    ]
    call = asyncio.run(cast_vote_call(server.socket, campaign, keys, ballots))
    call = [arg.replace(RAND_STAND_IN, RAND_INT) for arg in call]
    client = redis.Redis(unix_socket_path=str(server.socket))
    accepted_before = tally_total(client, keys)
    command = ["taskset", "-c", pinning.server, "redis-benchmark", "-s", str(server.socket)]
    command += ["-n", str(requests // batch), "-c", "50", "-P", "16", "-r", "1000000000"]
    command += ["--csv", "EVALSHA", script.sha, *call]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    rows = [ln for ln in result.stdout.splitlines() if ln.startswith('"EVALSHA')]
    if not rows:
        raise SystemExit(f"bench: redis-benchmark said: {result.stdout} {result.stderr}")
    calls_per_second = float(rows[-1].split(",")[1].strip('"'))
    # redis-benchmark counts error replies as requests: check that the votes landed.
    accepted = tally_total(client, keys) - accepted_before
    client.close()
    if accepted < 0.99 * (requests // batch) * batch:
        raise SystemExit(f"bench: only {accepted} of {requests} votes were accepted by the script")
    return calls_per_second * batch


# --- memory ---------------------------------------------------------------------------


class ManualClock:
    """The caster's clock, moved by the fill: it decides when each vote is cast."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def used_memory(client: aioredis.Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


def redis_memory(data_dir: Path, voters: int, *, keyed: bool = False) -> RedisFigures:
    """Cast a day's votes of ``voters`` phones into a fresh Redis and weigh what stays.

    ``keyed``: every vote carries an idempotency key, as the campaign page sends it.
    """
    server = EmbeddedRedis(data_dir)
    server.start()
    try:
        return asyncio.run(fill_and_weigh(server.socket, voters, keyed=keyed))
    finally:
        server.stop()


async def fill_and_weigh(socket: Path, voters: int, *, keyed: bool = False) -> RedisFigures:
    """The memory figures of ``voters`` phone-days cast through a VoteCaster."""
    campaign = bench_campaign()
    rules = campaign.rules
    keys = Keys(CAMPAIGN_ID, SHARDS)
    phone_hash = PhoneHasher(SECRET.encode())
    rng = random.Random(4)
    # Votes per phone-day: most voters cast a few, some use all ten.
    weights = [30, 20, 14, 10, 7, 5, 4, 3, 2, 5]
    counts = rng.choices(range(1, len(weights) + 1), weights, k=voters)
    # The heavy case: each phone casts all its votes in one burst, as fast as the
    # burst limit lets it, so its record keeps phone_burst_limit attempt times all
    # day (a voter spread over the day keeps one).
    step = rules.phone_burst_seconds / rules.phone_burst_limit
    clock = ManualClock(datetime(2026, 6, 15, 9, tzinfo=campaign.timezone).timestamp())
    day = campaign_day(clock.now, campaign.timezone)
    figures = RedisFigures(voters=voters, codes_per_phone_day=sum(counts) / voters)
    # Weighed on a connection of its own: the caster's connections hold buffers
    # the size of its calls, which are not the records' weight.
    async with aioredis.Redis(unix_socket_path=str(socket), single_connection_client=True) as scale:
        await scale.config_set("appendonly", "no")  # a log to write weighs nothing here
        connected = await connected_clients(scale)
        # As the service connects (hiredis packing); a generous timeout, since a
        # turn queues thousands of ballots at once.
        settings = Settings(redis_url=f"unix://{socket}", redis_timeout=60.0)
        client = connect(settings)
        tap = _Tap(client, keep=False)
        caster = VoteCaster(cast(RedisClient, tap), campaign, keys, clock, settings)
        await caster.vote_script.register(scale)
        await write_markers(scale, keys)  # as a ledger process marks a campaign's Redis
        stream_bytes = 0
        try:
            for first in range(0, voters, PHONES_PER_ROUND):
                numbers = range(first, min(first + PHONES_PER_ROUND, voters))
                phones = [phone_hash(f"1{3 + n % 7}{n:09d}") for n in numbers]
                picks = [rng.sample(campaign.nominees, counts[n]) for n in numbers]
                for turn in range(max(counts[n] for n in numbers)):
                    # A key of 32 hex digits, as the campaign page makes one per click.
                    outcomes = await asyncio.gather(
                        *(
                            caster.cast(
                                nominees[turn],
                                phone,
                                IP_HASH,
                                f"{n:016x}{turn:016x}" if keyed else "",
                            )
                            for n, phone, nominees in zip(numbers, phones, picks, strict=True)
                            if turn < len(nominees)
                        )
                    )
                    refused = sum(status != ACCEPTED for status, _, _ in outcomes)
                    if refused:
                        raise SystemExit(f"bench: the memory fill had {refused} votes refused")
                    clock.now += step
                # The flusher trims the streams once their entries are in the ledger:
                # weigh them apart, then drop them.
                with_streams = await used_memory(scale)
                await scale.delete(*keys.streams())
                stream_bytes += with_streams - await used_memory(scale)
            # Redis calls for one batch of 16 new phones' votes (keyed as the fill was).
            tap.counted = 0
            batch = [
                caster.cast(
                    campaign.nominees[0],
                    phone_hash(f"19{n:09d}"),
                    IP_HASH,
                    f"{n:032x}" if keyed else "",
                )
                for n in range(16)
            ]
            if {status for status, _, _ in await asyncio.gather(*batch)} != {ACCEPTED}:
                raise SystemExit("bench: the batch of 16 was refused")
            figures.calls_per_batch = tap.counted
        finally:
            await client.aclose()
        await wait_for_clients(scale, connected)
        # The records' weight: used_memory with them, less used_memory without
        # them, everything else the votes left (tallies, IP windows) in both.
        records = [keys.day(shard, day.label) for shard in range(SHARDS)]
        usage = [await scale.memory_usage(key, samples=0) for key in records]
        with_records = await used_memory(scale)
        await scale.delete(*records)
        figures.bytes_per_phone_day = (with_records - await used_memory(scale)) / voters
        figures.bytes_per_phone_day_usage = sum(int(n or 0) for n in usage) / voters
        figures.bytes_per_stream_entry = stream_bytes / sum(counts)
    return figures


async def connected_clients(client: aioredis.Redis) -> int:
    return int((await client.info("clients"))["connected_clients"])


async def wait_for_clients(client: aioredis.Redis, count: int) -> None:
    """Until Redis has let go of every connection but ``count`` (at most 10 s)."""
    for _ in range(1000):
        if await connected_clients(client) <= count:
            return
        await asyncio.sleep(0.01)
    raise SystemExit("bench: Redis kept the memory fill's connections open")
