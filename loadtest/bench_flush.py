"""Flusher ingest benchmark: votes/s from pre-filled Redis streams into each store.

    .venv/bin/python -m loadtest.bench_flush [--votes 200000] [--stores sqlite,postgres]

For each store it starts an embedded Redis (AOF, appendfsync always) in a
temporary directory, pre-fills the 16 vote streams with synthetic accepted
votes, built as ``votesvc.entry.VoteEntry`` and appended by a small script
(loadtest/prefill_votes.lua), not through HTTP, then runs
the real flusher (consumer group reads, idempotent inserts, XACK + XDEL) until
every vote is in the ledger, and prints votes/s. SQLite runs as the service
runs it (WAL, synchronous=FULL); PostgreSQL is a throwaway cluster with its
durable defaults (fsync on, synchronous_commit on), started like the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import shutil
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from tests.pgcluster import PgCluster, postgres_available
from votesvc.connection import connect
from votesvc.entry import ENTRY_FIELDS, VoteEntry
from votesvc.keys import Keys
from votesvc.ledger.flusher import Flusher
from votesvc.ledger.store import Store
from votesvc.ledger.store.postgres import PostgresStore
from votesvc.ledger.store.sqlite import SqliteStore
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

CAMPAIGN = "bench"
SHARDS = Settings().shards
NOMINEES = 30
FIRST_VOTE_MS = 1_780_000_000_000
PREFILL = (Path(__file__).parent / "prefill_votes.lua").read_text()
PREFILL_PER_CALL = 1000  # entries


def synthetic_vote(n: int) -> VoteEntry:
    """Vote ``n`` of the prefill: its own id, phone, IP and millisecond; nominees in turn."""
    digest = hashlib.sha1(str(n).encode()).hexdigest()  # 40 hex digits
    accepted_at = FIRST_VOTE_MS + n
    return VoteEntry(
        vote_id=f"{accepted_at:012x}{digest[:20]}",
        accepted_at=accepted_at,
        nominee=f"N{n % NOMINEES + 1:02d}",
        phone_hash=digest + digest[:24],
        ip_hash=digest[24:40],
    )


async def prefill(url: str, keys: Keys, votes: int) -> None:
    """Append ``votes`` synthetic accepted votes to the streams, split evenly over the shards."""
    # Packed by hiredis, as the service sends its calls: an argument per field and value.
    client = connect(Settings(redis_url=url, redis_timeout=30.0))
    script = client.register_script(PREFILL)
    per_shard = votes // SHARDS
    sent: asyncio.Future[object] | None = None
    try:
        for shard in range(SHARDS):
            first = shard * per_shard
            for start in range(first, first + per_shard, PREFILL_PER_CALL):
                args: list[str | int] = [len(ENTRY_FIELDS)]
                for n in range(start, min(start + PREFILL_PER_CALL, first + per_shard)):
                    for pair in synthetic_vote(n).fields().items():
                        args += pair
                # Build the next call while Redis runs this one.
                if sent is not None:
                    await sent
                sent = asyncio.ensure_future(script(keys=[keys.stream(shard)], args=args))
                await asyncio.sleep(0)  # let it go out
        if sent is not None:
            await sent
    finally:
        await client.aclose()


async def redis_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def flush_all(
    client: aioredis.Redis, keys: Keys, store: Store, votes: int, batch: int
) -> tuple[float, float, float]:
    """Wall seconds, flusher CPU seconds (this process), Redis CPU seconds."""
    settings = Settings(flush_interval=1.0, flush_batch=batch)
    flusher = Flusher(client, store, keys, settings, consumer="bench-1")
    await store.open()
    await flusher.ensure_groups()
    stop = asyncio.Event()
    redis_before = await redis_cpu(client)
    cpu_before = time.process_time()
    started = time.perf_counter()
    task = asyncio.create_task(flusher.run(stop))
    while flusher.written < votes:
        await asyncio.sleep(0.005)
        if task.done():
            task.result()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    redis_used = await redis_cpu(client) - redis_before
    stop.set()
    await task
    assert await store.count(CAMPAIGN) == votes
    return elapsed, cpu, redis_used


async def bench_store(
    name: str, votes: int, batch: int, workdir: Path
) -> tuple[float, float, float]:
    redis_dir = workdir / f"redis-{name}"
    server = EmbeddedRedis(redis_dir)
    server.start()
    cluster: PgCluster | None = None
    client = aioredis.Redis.from_url(server.url)
    store: Store
    try:
        keys = Keys(CAMPAIGN, SHARDS)
        await prefill(server.url, keys, votes)
        if name == "sqlite":
            store = SqliteStore(workdir / "ledger.sqlite3")
        else:
            cluster = PgCluster(durable=True)
            cluster.init()
            cluster.start()
            store = PostgresStore(cluster.url())
        try:
            return await flush_all(client, keys, store, votes, batch)
        finally:
            await store.close()
    finally:
        await client.aclose()
        server.stop()
        if cluster is not None:
            cluster.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=16384, help="VOTESVC_FLUSH_BATCH")
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    votes = args.votes - args.votes % SHARDS
    workdir = Path(tempfile.mkdtemp(prefix="votesvc-bench-flush-"))
    try:
        for name in args.stores.split(","):
            if name == "postgres" and not postgres_available():
                print("postgres: skipped (initdb/pg_ctl/postgres not on PATH)")
                continue
            elapsed, cpu, redis_used = asyncio.run(bench_store(name, votes, args.batch, workdir))
            print(
                f"{name:<9} {votes} votes flushed in {elapsed:.2f} s: "
                f"{votes / elapsed:,.0f} votes/s (batch {args.batch}); "
                f"flusher CPU {cpu:.2f} s ({votes / cpu:,.0f} votes per CPU-second), "
                f"Redis CPU {redis_used:.2f} s",
                flush=True,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
