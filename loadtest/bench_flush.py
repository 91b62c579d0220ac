"""Flusher ingest benchmark: votes/s from pre-filled Redis streams into each store.

    .venv/bin/python -m loadtest.bench_flush [--votes 200000] [--stores sqlite,postgres]

For each store it starts an embedded Redis (AOF, appendfsync always) in a
temporary directory, pre-fills the 16 vote streams with synthetic accepted
votes server-side (loadtest/prefill_votes.lua, not through HTTP), then runs
the real flusher (consumer group reads, idempotent inserts, XACK + XDEL) until
every vote is in the ledger, and prints votes/s. SQLite runs as the service
runs it (WAL, synchronous=FULL); PostgreSQL is a throwaway cluster with its
durable defaults (fsync on, synchronous_commit on), started like the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from tests.pgcluster import PgCluster, postgres_available
from votesvc.keys import Keys
from votesvc.ledger.flusher import Flusher
from votesvc.ledger.store import Store
from votesvc.ledger.store.postgres import PostgresStore
from votesvc.ledger.store.sqlite import SqliteStore
from votesvc.redis_server import EmbeddedRedis

CAMPAIGN = "bench"
SHARDS = 16
PREFILL = (Path(__file__).parent / "prefill_votes.lua").read_text()


async def prefill(client: aioredis.Redis, keys: Keys, votes: int) -> None:
    script = client.register_script(PREFILL)
    per_shard = votes // SHARDS
    for shard in range(SHARDS):
        first = shard * per_shard
        for start in range(first, first + per_shard, 20_000):
            count = min(20_000, first + per_shard - start)
            await script(keys=[keys.stream(shard)], args=[start, count, 30, 1_780_000_000_000])


async def redis_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def flush_all(
    client: aioredis.Redis, keys: Keys, store: Store, votes: int, batch: int
) -> tuple[float, float, float]:
    """Wall seconds, flusher CPU seconds (this process), Redis CPU seconds."""
    flusher = Flusher(client, store, keys, interval=1.0, batch=batch, consumer="bench-1")
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
        await prefill(client, keys, votes)
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
