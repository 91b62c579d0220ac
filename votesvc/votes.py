"""The vote path: the only code that writes votes to Redis.

Requests arriving together are cast together. ``VoteCaster.cast()`` queues a
ballot and waits; a batch holds every ballot queued while the previous batch
was on the wire, so a quiet service sends batches of one with no added delay
and a busy one amortises each Redis round trip over many votes. On a single
Redis a batch costs one round trip whatever its size: ``cast_vote.lua`` runs
the per-IP limit and then the votes. Against Redis Cluster an IP's counters
and a phone's state live in different hash slots, so the batch takes two
steps, the IP limit (one call per IP) and then the votes (one call per shard),
each step's calls sent concurrently; a call that fails fails only its own votes.

Every call carries a deadline in the Redis server's clock: past it the script
changes nothing, since the caller has answered 503 by then. The caster learns
each Redis node's clock before its first vote (``learn_clocks`` at start-up,
or just before the first call to a node it has not timed yet) and keeps the
estimate fresh from the replies that came back quickly. A reply that leaves
Redis after the caller's timeout can still carry an accepted vote: that is why
a client retries with an idempotency key (README, API).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from votesvc.campaign import Campaign, Nominee
from votesvc.connection import RedisClient
from votesvc.days import Clock, Day, DayCalendar
from votesvc.entry import UNVERIFIED
from votesvc.errors import RedisUnavailable
from votesvc.keys import PHONE_KEY_CHARS, Keys
from votesvc.logs import ThrottledLog
from votesvc.metrics import Metrics, VoteStats
from votesvc.scripts import Script, load_script
from votesvc.settings import Settings

__all__ = [
    "ACCEPTED",
    "ALREADY_VOTED",
    "CLOSED",
    "DAILY_LIMIT",
    "KEY_CONFLICT",
    "RATE_LIMITED",
    "REPLAYED",
    "Ballot",
    "VoteCaster",
]

log = logging.getLogger(__name__)

# Statuses, as cast_vote.lua returns them.
ACCEPTED = 0
RATE_LIMITED = 1
ALREADY_VOTED = 2
DAILY_LIMIT = 3
TOO_LATE = 4  # the script ran past its deadline and changed nothing
REPLAYED = 5  # the idempotency key's earlier acceptance, answered again
KEY_CONFLICT = 6  # the idempotency key was used with another nominee
CLOSED = 7  # voting is closed by Redis's clock (value 0: not open yet, 1: closed)
DATA_LOST = 8  # the shard's campaign marker is missing: Redis lost its data

Outcome = tuple[int, int, str]
"""(status, value, vote id): value is the votes left today for ACCEPTED and
REPLAYED, the milliseconds to wait for RATE_LIMITED, 0 or 1 for CLOSED; the
vote id is set for ACCEPTED and REPLAYED only."""

_CLOCK_SAMPLE_RTT = 0.1  # seconds: a reply slower than this teaches nothing about the clock


@dataclass(slots=True)
class Ballot:
    nominee: Nominee
    phone_hash: str
    ip_hash: str
    prefix_hash: str  # the client's network prefix, keyed: the stream entry's ``px``
    key: str  # the idempotency key, "" if none
    method: str  # how the voter was verified: the stream entry's ``m`` (votesvc.entry)
    future: asyncio.Future[Outcome]
    queued_at: float  # loop time


def _split(items: Iterable[Any], key: Callable[[Any], object]) -> list[list[Any]]:
    groups: dict[object, list[Any]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())


class VoteCaster:
    """Batches ballots into Lua calls; one instance per process."""

    def __init__(
        self,
        client: RedisClient,
        campaign: Campaign,
        keys: Keys,
        clock: Clock,
        settings: Settings,
        metrics: Metrics | None = None,
        stats: VoteStats | None = None,
    ) -> None:
        self._metrics = metrics  # None: no metrics
        self._stats = stats
        self._client = client
        self._keys = keys
        self._clock = clock
        self._calendar = DayCalendar(campaign.timezone)
        self._rules = campaign.rules
        self._window = campaign.window_ms
        self._cluster = settings.redis_cluster
        self._batch_max = settings.batch_max
        self._in_flight_max = settings.batch_in_flight
        self._in_flight = 0
        timeout = settings.redis_timeout
        # Fail fast: a ballot still queued after half the Redis timeout (every
        # batch slot is stuck on a slow Redis) fails without being sent, and a
        # script that runs later than most of the timeout changes nothing.
        self._queue_budget = timeout / 2
        self._script_budget = timeout * 0.8
        self._offsets: dict[str, float] = {}  # Redis node -> its clock minus ours (ms)
        self._queue: list[Ballot] = []
        self._kick_pending = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._down_log = ThrottledLog(log, every=5.0)
        self._lost_log = ThrottledLog(log, every=10.0)
        self._id_prefix = secrets.token_hex(6)
        self._id_seq = 0
        self.vote_script: Script = load_script("cast_vote")

    async def learn_clocks(self) -> None:
        """Time every Redis node (each master of a cluster) before the first vote.

        Raises RedisError or OSError when Redis fails.
        """
        if self._cluster:
            cluster: Any = self._client
            await cluster.initialize()
            for node in cluster.get_primaries():
                await self._time_node(node.name, node)
        else:
            await self._time_node("", None)

    async def _time_node(self, name: str, node: Any) -> None:
        sent = time.time()
        if node is None:
            seconds, micros = await self._client.time()
        else:
            seconds, micros = await self._client.execute_command("TIME", target_nodes=node)
        received = time.time()
        self._offsets[name] = seconds * 1000 + micros / 1000 - (sent + received) * 500

    def cast(
        self,
        nominee: Nominee,
        phone_hash: str,
        ip_hash: str,
        key: str = "",
        method: str = UNVERIFIED,
        prefix_hash: str = "",
    ) -> asyncio.Future[Outcome]:
        """Queue one ballot (``key``: its idempotency key); the future resolves to its outcome.

        ``method`` is how the voter was verified, as the stream entry records it
        (``none``, ``sms``, ``partner:<id>``): non-empty, without spaces.
        ``prefix_hash``: the keyed hash of the client's network prefix
        (``ClientIP.client``), hex, "" if unknown.
        The future raises :class:`RedisUnavailable` when its batch's call failed.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.append(
            Ballot(nominee, phone_hash, ip_hash, prefix_hash, key, method, future, loop.time())
        )
        if not self._kick_pending and self._in_flight < self._in_flight_max:
            # Wait one loop turn so every request already readable joins the batch.
            self._kick_pending = True
            loop.call_soon(self._kick)
        return future

    async def drain(self) -> None:
        """Wait until every queued ballot has its outcome (graceful shutdown)."""
        while self._tasks or self._queue:
            if self._queue and not self._kick_pending:
                self._kick()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _kick(self) -> None:
        self._kick_pending = False
        queue = self._queue
        if queue and self._in_flight < self._in_flight_max:
            cutoff = asyncio.get_running_loop().time() - self._queue_budget
            stale = 0
            while stale < len(queue) and queue[stale].queued_at < cutoff:
                stale += 1
            if stale:
                late = RedisUnavailable("Redis is too slow: the vote waited too long to be sent")
                for ballot in queue[:stale]:
                    _fail(ballot, late)
                del queue[:stale]
        while self._queue and self._in_flight < self._in_flight_max:
            batch = self._queue[: self._batch_max]
            del self._queue[: self._batch_max]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._in_flight -= 1
        if self._queue and not self._kick_pending:
            self._kick()

    def _vote_ids(self, now_ms: int, count: int) -> list[str]:
        # Unique across processes and shards: time, a per-process random prefix, a counter.
        head = f"{now_ms:012x}{self._id_prefix}"
        first = self._id_seq + 1
        self._id_seq = (self._id_seq + count) & 0xFFFFFFFF
        return [f"{head}{seq & 0xFFFFFFFF:08x}" for seq in range(first, first + count)]

    async def _send(self, batch: list[Ballot]) -> None:
        failure: Exception | None = None
        try:
            await self._cast_batch(batch)
        except RedisUnavailable as exc:
            failure = exc
        except Exception as exc:  # never leave a caller waiting
            log.exception("vote batch failed unexpectedly")
            failure = RedisUnavailable(f"vote batch failed: {exc!r}")
        if failure is not None:
            for ballot in batch:
                _fail(ballot, failure)

    async def _cast_batch(self, batch: list[Ballot]) -> None:
        # A caller that went away (its future cancelled) before the batch left
        # casts nothing: no vote is counted that nobody will hear about.
        batch = [ballot for ballot in batch if not ballot.future.done()]
        if not batch:
            return
        now_ms = int(self._clock() * 1000)
        if not self._cluster:
            await self._cast_group(batch, now_ms, with_ip_limit=True)  # one round trip
            return
        admitted = await self._admit_ips(batch, now_ms)
        voters: list[Ballot] = []
        for ballot in batch:
            room, retry_ms = admitted[ballot.ip_hash]
            if room > 0:
                admitted[ballot.ip_hash] = (room - 1, retry_ms)
                voters.append(ballot)
            else:
                _resolve(ballot, (RATE_LIMITED, retry_ms, ""))
        if not voters:
            return
        groups = _split(voters, self._shard_of)
        await asyncio.gather(
            *(self._cast_group(group, now_ms, with_ip_limit=False) for group in groups)
        )

    def _shard_of(self, ballot: Ballot) -> int:
        return self._keys.shard_of(ballot.phone_hash)

    async def _admit_ips(self, batch: list[Ballot], now_ms: int) -> dict[str, tuple[int, int]]:
        """Cluster only: the per-IP limit alone, one call per IP (its own hash slot).

        Returns how many ballots of each IP it admits, and the retry time.
        """
        wanted = _count_ips(batch)
        day = self._calendar.day(now_ms / 1000)
        calls = [self._ip_call(ip, count, now_ms, day) for ip, count in wanted.items()]
        replies = await asyncio.gather(*calls)
        return {
            ip: (int(reply[0]), int(reply[1])) for ip, reply in zip(wanted, replies, strict=True)
        }

    async def _ip_call(self, ip: str, count: int, now_ms: int, day: Day) -> Any:
        keys, args = self._ip_section({ip: count}, now_ms)
        node = self._node_of(keys)
        head = self._vote_args(now_ms, day, await self._deadline(node))
        return await self._call(self.vote_script, keys, head + args, node)

    def _ip_section(self, wanted: dict[str, int], now_ms: int) -> tuple[list[str], list[str | int]]:
        """cast_vote.lua's IP keys and IP arguments (ARGV[11...]) for ``wanted``."""
        window_ms = self._rules.ip_limit_seconds * 1000
        window, elapsed = divmod(now_ms, window_ms)
        keys: list[str] = []
        for ip in wanted:
            keys += (self._keys.ip_window(ip, window), self._keys.ip_window(ip, window - 1))
        args: list[str | int] = [self._rules.ip_limit, window_ms, elapsed, len(wanted)]
        args += wanted.values()
        return keys, args

    def _vote_args(self, now_ms: int, day: Day, deadline: int) -> list[str | int]:
        """cast_vote.lua's ARGV[1..10]."""
        rules = self._rules
        return [
            now_ms,
            # relative to our clock, so a skewed Redis clock cannot cut the day short
            math.ceil(day.end - now_ms / 1000) + 60,
            rules.votes_per_phone_per_day,
            rules.votes_per_nominee_per_phone_per_day,
            rules.phone_burst_limit,
            rules.phone_burst_seconds * 1000,
            PHONE_KEY_CHARS,
            deadline,
            *self._window,
        ]

    async def _cast_group(self, group: list[Ballot], now_ms: int, *, with_ip_limit: bool) -> None:
        day = self._calendar.day(now_ms / 1000)
        keys = self._keys
        # See cast_vote.lua: four keys per shard in the batch, two keys per IP;
        # then the IP arguments and one packed argument per vote.
        ip_numbers: dict[str, int] = {}
        wanted: dict[str, int] = {}
        if with_ip_limit:
            wanted = _count_ips(group)
            ip_numbers = {ip: number for number, ip in enumerate(wanted, 1)}
        ip_keys, ip_args = self._ip_section(wanted, now_ms)
        shard_keys: list[str] = []
        packed: list[str] = []
        groups: dict[int, int] = {}
        vote_ids = self._vote_ids(now_ms, len(group))
        for ballot, vote_id in zip(group, vote_ids, strict=True):
            phone_hash = ballot.phone_hash
            shard = keys.shard_of(phone_hash)
            index = groups.get(shard)
            if index is None:
                index = groups[shard] = len(groups)
                shard_keys += (
                    keys.day(shard, day.label),
                    keys.tally(shard),
                    keys.stream(shard),
                    keys.marker(shard),
                )
            nominee = ballot.nominee
            ip_hash = ballot.ip_hash
            packed.append(
                f"{phone_hash} {ip_hash} {ballot.prefix_hash} {vote_id} {nominee.code} {index} "
                f"{nominee.id} {ip_numbers.get(ip_hash, 0)} {ballot.method} {ballot.key}"
            )
        call_keys = shard_keys + ip_keys
        if self._stats is not None:
            self._stats.batch(len(group))
        try:
            node = self._node_of(call_keys)
            args = self._vote_args(now_ms, day, await self._deadline(node))
            args += ip_args
            args += packed
            reply = await self._call(self.vote_script, call_keys, args, node)
        except RedisUnavailable as exc:
            for ballot in group:  # only this group's votes: other slots may have landed
                _fail(ballot, exc)
            return
        late = None
        # (status, value) per vote, the IPs' pairs, the replayed votes' ids, the time
        replays = iter(reply[2 * (len(group) + len(wanted)) : -1])
        values = iter(reply)
        for ballot, vote_id, status, value in zip(group, vote_ids, values, values, strict=False):
            future = ballot.future
            replayed_id = _text(next(replays)) if status == REPLAYED else ""
            if future.done():  # the client went away
                continue
            if status == ACCEPTED:
                future.set_result((ACCEPTED, value, vote_id))
            elif status == TOO_LATE:
                late = late or RedisUnavailable("Redis ran the vote past its deadline")
                future.set_exception(late)
            elif status == DATA_LOST:
                self._lost_log.error(
                    "Redis has lost votesvc's data (campaign %s: a shard's marker is "
                    "missing); votes are refused until `votesvc restore` has run",
                    self._keys.campaign_id,
                )
                future.set_exception(RedisUnavailable("Redis lost its data: restore needed"))
            else:
                future.set_result((status, value, replayed_id))

    def _node_of(self, keys: list[str]) -> str:
        """The Redis node a call on ``keys`` goes to ("" on a single Redis)."""
        if not self._cluster:
            return ""
        cluster: Any = self._client
        node = cluster.get_node_from_key(keys[0])
        return "" if node is None else str(node.name)

    async def _deadline(self, node: str) -> int:
        """Redis server time (ms) after which a call to ``node`` must change nothing."""
        offset = self._offsets.get(node)
        if offset is None:  # a node not timed yet (Redis was down at start, a failover)
            try:
                await self.learn_clocks()
            except (RedisError, OSError) as exc:
                raise RedisUnavailable(f"cannot read Redis's clock: {exc}") from exc
            offset = self._offsets.get(node)
            if offset is None:
                raise RedisUnavailable(f"Redis node {node} is not a known master")
        return int((time.time() + self._script_budget) * 1000 + offset)

    async def _call(self, script: Script, keys: list[str], args: list[str | int], node: str) -> Any:
        metrics = self._metrics
        sent = time.time()
        try:
            reply = await script(self._client, keys, args)
        except (RedisError, OSError) as exc:
            if metrics is not None:
                metrics.script_errors.labels(script.name).inc()
            self._down_log.warn("Redis call %s failed: %s", script.name, exc)
            raise RedisUnavailable(f"{script.name}: {exc}") from exc
        received = time.time()
        if self._stats is not None:
            self._stats.script(script.name, received - sent)
        if received - sent < _CLOCK_SAMPLE_RTT:  # a quick reply: a fair reading of its clock
            self._offsets[node] = int(reply[-1]) - (sent + received) * 500
        return reply


def _count_ips(batch: list[Ballot]) -> dict[str, int]:
    """How many ballots of the batch come from each IP, in order of first appearance."""
    wanted: dict[str, int] = {}
    for ballot in batch:
        wanted[ballot.ip_hash] = wanted.get(ballot.ip_hash, 0) + 1
    return wanted


def _resolve(ballot: Ballot, outcome: Outcome) -> None:
    if not ballot.future.done():  # the client may have gone away
        ballot.future.set_result(outcome)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _fail(ballot: Ballot, exc: Exception) -> None:
    if not ballot.future.done():
        ballot.future.set_exception(exc)
