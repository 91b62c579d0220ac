"""The ledger flusher: Redis vote streams -> durable storage, on a schedule.

Every shard's stream is read through the consumer group ``ledger``; each
flusher is one consumer (``host-pid-nonce@scope``, see ``heartbeat.py``), so
any number can run side by side (one per ``serve`` worker, or ``votesvc
flush`` processes). A cycle (:meth:`Flusher.step`), every ``interval`` or at
once when the last one filled its batch:

1. claim entries another consumer left pending: at once from a dead
   consumer of this pid namespace (its pid is gone), else after
   ``claim_after`` seconds idle (XAUTOCLAIM);
2. read new entries (XREADGROUP, shard by shard);
3. write the batch into ``votes`` (the vote id is the key, so a re-delivered
   entry changes nothing), retrying with backoff while the database is down;
   nothing is acknowledged before it is written;
4. acknowledge the written entries and trim the stream below the oldest
   entry still pending (``lua/ledger_ack.lua``, one step).

While a backlog lasts, the next batch is read while the last one is written.
On stop (SIGTERM) the batch in hand is finished first. Entries never leave
Redis before they are in the ledger, so a crash anywhere loses nothing.

The admin commands (``flush --once``, ``void``, ``restore``) call
:meth:`Flusher.catch_up` instead: one pass up to where the streams ended when
it started, which ends under any traffic and raises if the ledger refuses.

Beside the cycles, a running flusher beats a heartbeat (``heartbeat.py``) so
that ``votesvc restore`` can tell it runs, with or without traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from votesvc.connection import RedisClient
from votesvc.days import Clock, system_clock
from votesvc.keys import Keys
from votesvc.ledger.backoff import REDIS_DOWN, Backoff, wait_or_stop
from votesvc.ledger.entries import Entries, StreamId, format_stream_id, parse_stream_id, text
from votesvc.ledger.heartbeat import Heartbeat, consumer_name, ended_here
from votesvc.ledger.store import Store, StoreUnavailable
from votesvc.logs import ThrottledLog
from votesvc.scripts import Script, load_script, register_scripts
from votesvc.settings import Settings
from votesvc.tally import read_counts

__all__ = ["GROUP", "Flusher", "consumer_name"]

log = logging.getLogger(__name__)

GROUP = "ledger"
_REAP_EVERY = 5.0  # seconds between looks for dead consumers of this pid namespace
_BACKOFF_MAX = 1.0  # seconds: the longest wait between tries while Redis or the database is down
_READ_CHUNK = 256


@dataclass(slots=True)
class _Batch:
    entries: Entries
    written: asyncio.Task[bool]  # True once the rows are in the ledger


class Flusher:
    """Moves accepted votes from the Redis streams into ``store``."""

    def __init__(
        self,
        client: RedisClient,
        store: Store,
        keys: Keys,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        consumer: str | None = None,
    ) -> None:
        self._client = client
        self.store = store
        self._keys = keys
        self._campaign = keys.campaign_id
        self._streams = keys.streams()
        self.interval = settings.flush_interval
        self._backoff_max = max(self.interval, _BACKOFF_MAX)
        self._per_shard = max(1, settings.flush_batch // keys.shards)
        # Entries one XREADGROUP reads: each call holds Redis (and the votes
        # behind it) for its whole run, so keep it well under a millisecond.
        self._per_call = min(self._per_shard, _READ_CHUNK)
        self._claim_after_ms = int(settings.flush_claim_after * 1000)
        self._snapshot_interval = settings.snapshot_interval
        self._clock = clock
        self.consumer = consumer or consumer_name()
        self._heartbeat = Heartbeat(client, keys, self.consumer, every=self.interval)
        self._next_reap = 0.0
        self._next_stale_claim = 0.0
        self._next_snapshot = 0.0
        self._groups_ready = False
        self._writing: _Batch | None = None  # a full batch being written while the next is read
        self._ack_script = load_script("ledger_ack")
        self._group_script = load_script("ledger_group")
        self._redis_log = ThrottledLog(log, every=10.0)
        self._store_log = ThrottledLog(log, every=10.0)
        self._snapshot_log = ThrottledLog(log, every=10.0)  # never hides a write failure
        self.written = 0  # votes this flusher inserted (new rows)
        self.write_errors = 0  # ledger writes that failed (the batch stays in Redis)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush until ``stop`` is set; the batch in hand is finished first."""
        heartbeat = asyncio.create_task(self._heartbeat.run(stop), name="flusher-heartbeat")
        try:
            await self._run(stop)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _run(self, stop: asyncio.Event) -> None:
        if not await self._open_store(stop):
            return
        log.info(
            "ledger flusher %s: %s store, every %.2fs",
            self.consumer,
            self.store.name,
            self.interval,
        )
        backoff = Backoff(self._backoff_max)
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    full = await self.step(stop)
                    backoff.reset()
                except REDIS_DOWN as exc:
                    self._groups_ready = False
                    self._redis_log.warn("flusher cannot reach Redis (%s); retrying", exc)
                    await backoff.wait(stop)
                    continue
                except Exception:  # a bug must not stop the ledger: log it, try again
                    log.exception("flusher cycle failed")
                    await wait_or_stop(stop, self._backoff_max)
                    continue
                if not full:
                    await wait_or_stop(stop, self.interval - (time.monotonic() - started))
        finally:
            try:
                await self.settle()
            except REDIS_DOWN as exc:
                log.warning("last batch written but not acknowledged (%s)", exc)

    async def step(self, stop: asyncio.Event | None = None) -> bool:
        """One cycle: read a batch, write it, acknowledge it; True if a shard filled its share.

        After a full batch (a backlog) the step returns while that batch is still
        being written, and the next step reads the following batch meanwhile;
        :meth:`settle` finishes a batch left in hand. Raises RedisError when Redis
        fails. A database outage is waited out (with backoff) unless ``stop`` is
        set meanwhile, in which case the batch stays pending in Redis.
        """
        entries, full = await self._read_batch()
        await self.settle()
        if entries.ids:
            batch = _Batch(entries, asyncio.create_task(self._write(entries, stop)))
            if full and not (stop is not None and stop.is_set()):
                self._writing = batch
            else:
                await self._finish(batch)
        await self._maybe_snapshot()
        return full

    async def settle(self) -> None:
        """Finish the batch a full step left in hand (written, then acknowledged)."""
        batch, self._writing = self._writing, None
        if batch is not None:
            await self._finish(batch)

    async def catch_up(self) -> int:
        """Flush the streams up to where they ended when it was called, then stop.

        For the admin commands that need the ledger complete (``flush --once``,
        ``void``, ``restore``). Each stream's last entry id is read first; then
        every entry up to it is written and acknowledged, whichever consumer
        holds it (pending entries are claimed however briefly idle: the insert
        ignores known ids). Entries appended after those ids are left to the
        running flushers, so the call ends under any traffic: a read may hand
        it up to one read's worth more per stream, which it writes too rather
        than leave them pending in its name. Returns the entries handled.

        Raises StoreUnavailable when a batch cannot be written (nothing is
        acknowledged for it; the batches before it stay written), RedisError
        when Redis fails.
        """
        await self.ensure_groups()
        ends: dict[int, StreamId] = {}
        for shard, stream in enumerate(self._streams):
            last: Any = await self._client.xrevrange(stream, "+", "-", count=1)
            if last:
                ends[shard] = parse_stream_id(last[0][0])
        unread = dict(ends)  # shards whose entries up to their end are not all delivered yet
        handled = 0
        while True:
            entries = await self._claim_up_to(ends)
            entries.extend(await self._read_up_to(unread))
            if not entries.ids:
                return handled
            try:
                self.written += await self.store.insert_votes(entries.rows)
            except StoreUnavailable as exc:
                raise StoreUnavailable(
                    f"{len(entries)} votes pending in Redis could not be written: {exc}"
                ) from exc
            await self._acknowledge(entries)
            handled += len(entries)

    async def _claim_up_to(self, ends: dict[int, StreamId]) -> Entries:
        """Pending entries up to each shard's end, whoever holds them, now ours."""
        claimed = Entries(self._campaign)
        for shard, end in ends.items():
            stream = self._streams[shard]
            pending = await self._client.xpending_range(
                stream, GROUP, "-", format_stream_id(end), self._per_call
            )
            if not pending:
                continue
            ids: list[Any] = [item["message_id"] for item in pending]
            entries: Any = await self._client.xclaim(stream, GROUP, self.consumer, 0, ids)
            for entry in entries:
                if entry and entry[1]:  # an entry deleted meanwhile has no fields
                    claimed.add_entry(shard, entry)
        return claimed

    async def _read_up_to(self, unread: dict[int, StreamId]) -> Entries:
        """New entries of the shards in ``unread``; a shard read up to its end leaves it."""
        entries = Entries(self._campaign)
        for shard, end in list(unread.items()):
            reply: Any = await self._client.xreadgroup(
                GROUP, self.consumer, {self._streams[shard]: ">"}, count=self._per_call
            )
            new = reply[0][1] if reply else []
            for entry in new:
                entries.add_entry(shard, entry)
            if not new or parse_stream_id(new[-1][0]) >= end:
                del unread[shard]
        return entries

    async def retire(self) -> None:
        """Leave the group (on the way out) if nothing is pending with this consumer.

        Its heartbeat goes in any case: it no longer runs.
        """
        await self._heartbeat.forget()
        for stream in self._streams:
            with contextlib.suppress(*REDIS_DOWN):
                mine = await self._client.xpending_range(
                    stream, GROUP, "-", "+", 1, consumername=self.consumer
                )
                if not mine:
                    await self._client.xgroup_delconsumer(stream, GROUP, self.consumer)

    async def ensure_groups(self) -> None:
        """Create the consumer group on every stream (from its start) if missing.

        Also where a flusher registers the scripts: at its start, and again after
        Redis lost its data.
        """
        if self._groups_ready:
            return
        await register_scripts(self._client)
        for stream in self._streams:
            await self._group_script(self._client, [stream], [GROUP])
        self._groups_ready = True

    async def _open_store(self, stop: asyncio.Event) -> bool:
        backoff = Backoff(self._backoff_max)
        while not stop.is_set():
            try:
                await self.store.open()
                return True
            except StoreUnavailable as exc:
                self.write_errors += 1
                self._store_log.warn("ledger database unavailable at start (%s); retrying", exc)
                await backoff.wait(stop)
        return False

    async def _read_batch(self) -> tuple[Entries, bool]:
        await self.ensure_groups()
        try:
            return await self._gather()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost its data (or a stream was deleted): the groups come back from 0.
            log.warning("flusher %s: consumer groups are gone; creating them again", self.consumer)
            self._groups_ready = False
            await self.ensure_groups()
            return await self._gather()

    async def _gather(self) -> tuple[Entries, bool]:
        entries = await self._claim_dead()
        now = time.monotonic()
        if now >= self._next_stale_claim:
            # XAUTOCLAIM walks the pending list: not on every cycle, the
            # entries it looks for have been idle for claim_after already.
            self._next_stale_claim = now + min(_REAP_EVERY, self._claim_after_ms / 2000)
            entries.extend(await self._autoclaim(self._claim_after_ms))
        fresh, full = await self._read_new()
        entries.extend(fresh)
        return entries, full

    async def _finish(self, batch: _Batch) -> None:
        if await batch.written:
            await self._acknowledge(batch.entries)

    async def _read_new(self) -> tuple[Entries, bool]:
        """New entries of every shard, and whether a shard filled its share.

        One XREADGROUP per shard of at most ``_per_call`` entries, one call at a
        time like the others, so that votes get in between.
        """
        entries = Entries(self._campaign)
        full = False
        for shard, stream in enumerate(self._streams):
            # RESP2, as the client speaks it: [[stream, [(id, fields), ...]]], or [] if none
            reply: Any = await self._client.xreadgroup(
                GROUP, self.consumer, {stream: ">"}, count=self._per_call
            )
            if not reply:
                continue
            new = reply[0][1]
            for entry in new:
                entries.add_entry(shard, entry)
            full = full or len(new) >= self._per_call
        return entries, full

    async def _autoclaim(self, min_idle_ms: int) -> Entries:
        """Entries pending longer than ``min_idle_ms`` with any consumer, now ours."""
        replies = [  # one at a time, like the reads: votes get in between
            await self._client.xautoclaim(
                stream, GROUP, self.consumer, min_idle_ms, "0-0", count=self._per_call
            )
            for stream in self._streams
        ]
        claimed = Entries(self._campaign)
        for shard, reply in enumerate(replies):
            for entry in reply[1]:
                if entry[1]:  # an entry deleted meanwhile has no fields
                    claimed.add_entry(shard, entry)
        if claimed.ids and min_idle_ms:
            log.info("flusher %s claimed %d stale pending votes", self.consumer, len(claimed))
        return claimed

    async def _claim_dead(self) -> Entries:
        """Take over the pending entries of consumers of this pid namespace whose process died."""
        now = time.monotonic()
        if now < self._next_reap:
            return Entries(self._campaign)
        self._next_reap = now + _REAP_EVERY
        claimed = Entries(self._campaign)
        taken: dict[str, int] = {}  # dead consumer -> entries taken over, all shards
        for shard, stream in enumerate(self._streams):
            for info in await self._client.xinfo_consumers(stream, GROUP):
                name = text(info["name"])
                if name == self.consumer or not ended_here(name):
                    continue
                before = len(claimed)
                while True:
                    pending = await self._client.xpending_range(
                        stream, GROUP, "-", "+", self._per_shard, consumername=name
                    )
                    if not pending:
                        break
                    ids: list[Any] = [item["message_id"] for item in pending]
                    entries: Any = await self._client.xclaim(stream, GROUP, self.consumer, 0, ids)
                    for entry in entries:
                        if entry and entry[1]:
                            claimed.add_entry(shard, entry)
                    if len(pending) < self._per_shard:
                        break
                await self._client.xgroup_delconsumer(stream, GROUP, name)
                taken[name] = taken.get(name, 0) + len(claimed) - before
        for name, count in taken.items():
            log.info(
                "flusher %s took over %d pending votes from dead consumer %s",
                self.consumer,
                count,
                name,
            )
        return claimed

    async def _write(self, entries: Entries, stop: asyncio.Event | None) -> bool:
        rows = entries.rows
        backoff = Backoff(self._backoff_max)
        failed = False
        while True:
            try:
                self.written += await self.store.insert_votes(rows)
            except StoreUnavailable as exc:
                self.write_errors += 1
                self._store_log.warn(
                    "ledger write failed (%s); holding %d votes in Redis and retrying",
                    exc,
                    len(rows),
                )
                failed = True
                if stop is not None and stop.is_set():
                    return False
                await backoff.wait(stop)
                continue
            if failed:
                log.info(
                    "ledger writable again: %d held votes written",
                    len(rows),
                    extra={"outcome": "recovered"},
                )
            return True

    async def _acknowledge(self, entries: Entries) -> None:
        calls = [
            ([self._streams[shard]], [GROUP, " ".join(ids)]) for shard, ids in entries.ids.items()
        ]
        await self._scripted(self._ack_script, calls)

    async def _scripted(
        self, script: Script, calls: list[tuple[list[str], list[Any]]]
    ) -> list[Any]:
        """The calls one after the other, not pipelined.

        Redis runs a client's pipelined commands back to back: sixteen shard
        reads in one pipeline held it for milliseconds, and votes queued behind
        them (p99 30 ms at half load). One round trip each lets votes in between.
        """
        return [await script(self._client, keys, args) for keys, args in calls]

    async def _maybe_snapshot(self) -> None:
        now = time.monotonic()
        if now < self._next_snapshot:
            return
        self._next_snapshot = now + self._snapshot_interval
        # One flusher of the fleet writes each interval's snapshot.
        ttl_ms = max(1, int(self._snapshot_interval * 1000) - 50)
        lock = self._keys.snapshot_lock()
        if not await self._client.set(lock, self.consumer, nx=True, px=ttl_ms):
            return
        counts = await read_counts(self._client, self._keys)
        try:
            await self.store.insert_snapshot(self._campaign, counts, int(self._clock() * 1000))
        except StoreUnavailable as exc:
            self._snapshot_log.warn("tally snapshot skipped: %s", exc)
