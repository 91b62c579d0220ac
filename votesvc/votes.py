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
from votesvc.errors import RedisUnavailable
from votesvc.keys import PHONE_KEY_CHARS, Keys
from votesvc.logs import ThrottledLog
from votesvc.scripts import Script, load_script
from votesvc.settings import Settings

__all__ = ["ACCEPTED", "ALREADY_VOTED", "DAILY_LIMIT", "RATE_LIMITED", "Ballot", "VoteCaster"]

log = logging.getLogger(__name__)

# Statuses, as cast_vote.lua returns them.
ACCEPTED = 0
RATE_LIMITED = 1
ALREADY_VOTED = 2
DAILY_LIMIT = 3
TOO_LATE = 4  # the script ran past its deadline and changed nothing

Outcome = tuple[int, int, str]
"""(status, value, vote id): value is the votes left today for ACCEPTED, the
milliseconds to wait for RATE_LIMITED; the vote id is set for ACCEPTED only."""


@dataclass(slots=True)
class Ballot:
    nominee: Nominee
    phone_hash: str
    ip_hash: str
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
    ) -> None:
        self._client = client
        self._keys = keys
        self._clock = clock
        self._calendar = DayCalendar(campaign.timezone)
        self._rules = campaign.rules
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
        self._server_offset_ms: float | None = None  # Redis clock minus ours
        self._queue: list[Ballot] = []
        self._kick_pending = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._down_log = ThrottledLog(log, every=5.0)
        self._id_prefix = secrets.token_hex(6)
        self._id_seq = 0
        self.vote_script: Script = load_script("cast_vote")

    def cast(self, nominee: Nominee, phone_hash: str, ip_hash: str) -> asyncio.Future[Outcome]:
        """Queue one ballot; the future resolves to its outcome.

        The future raises :class:`RedisUnavailable` when its batch's call failed.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.append(Ballot(nominee, phone_hash, ip_hash, future, loop.time()))
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
        head = self._vote_args(now_ms, self._calendar.day(now_ms / 1000), deadline=0)  # no votes
        calls = [
            self._call(self.vote_script, *self._ip_section({ip: count}, now_ms, head))
            for ip, count in wanted.items()
        ]
        replies = await asyncio.gather(*calls)
        return {
            ip: (int(reply[0]), int(reply[1])) for ip, reply in zip(wanted, replies, strict=True)
        }

    def _ip_section(
        self, wanted: dict[str, int], now_ms: int, head: list[str | int]
    ) -> tuple[list[str], list[str | int]]:
        """cast_vote.lua's IP keys, and ``head`` followed by the IP arguments."""
        window_ms = self._rules.ip_limit_seconds * 1000
        window, elapsed = divmod(now_ms, window_ms)
        keys: list[str] = []
        for ip in wanted:
            keys += (self._keys.ip_window(ip, window), self._keys.ip_window(ip, window - 1))
        args = [*head, self._rules.ip_limit, window_ms, elapsed, len(wanted), *wanted.values()]
        return keys, args

    def _vote_args(self, now_ms: int, day: Day, deadline: int) -> list[str | int]:
        """cast_vote.lua's ARGV[1..8]."""
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
        ]

    async def _cast_group(self, group: list[Ballot], now_ms: int, *, with_ip_limit: bool) -> None:
        day = self._calendar.day(now_ms / 1000)
        keys = self._keys
        # See cast_vote.lua: three keys per shard in the batch, two keys per IP;
        # then the IP arguments and one packed argument per vote.
        ip_numbers: dict[str, int] = {}
        wanted: dict[str, int] = {}
        if with_ip_limit:
            wanted = _count_ips(group)
            ip_numbers = {ip: number for number, ip in enumerate(wanted, 1)}
        head = self._vote_args(now_ms, day, self._deadline())
        ip_keys, args = self._ip_section(wanted, now_ms, head)
        shard_keys: list[str] = []
        groups: dict[int, int] = {}
        vote_ids = self._vote_ids(now_ms, len(group))
        for ballot, vote_id in zip(group, vote_ids, strict=True):
            phone_hash = ballot.phone_hash
            shard = keys.shard_of(phone_hash)
            index = groups.get(shard)
            if index is None:
                index = groups[shard] = len(groups)
                shard_keys += (keys.day(shard, day.label), keys.tally(shard), keys.stream(shard))
            nominee = ballot.nominee
            ip_hash = ballot.ip_hash
            args.append(
                f"{phone_hash} {ip_hash} {vote_id} {nominee.code} {index} {nominee.id} "
                f"{ip_numbers.get(ip_hash, 0)}"
            )
        try:
            reply = await self._call(self.vote_script, shard_keys + ip_keys, args)
        except RedisUnavailable as exc:
            for ballot in group:  # only this group's votes: other slots may have landed
                _fail(ballot, exc)
            return
        self._server_offset_ms = int(reply[-1]) - time.time() * 1000
        late = None
        values = iter(reply)  # (status, value) per vote, then the IPs' pairs and the time
        for ballot, vote_id, status, value in zip(group, vote_ids, values, values, strict=False):
            future = ballot.future
            if future.done():  # the client went away
                continue
            if status == ACCEPTED:
                future.set_result((ACCEPTED, value, vote_id))
            elif status == TOO_LATE:
                late = late or RedisUnavailable("Redis ran the vote past its deadline")
                future.set_exception(late)
            else:
                future.set_result((status, value, ""))

    def _deadline(self) -> int:
        """Redis server time (ms) after which this call must change nothing; 0: none yet."""
        offset = self._server_offset_ms
        if offset is None:  # learnt from the first reply
            return 0
        return int((time.time() + self._script_budget) * 1000 + offset)

    async def _call(self, script: Script, keys: list[str], args: list[str | int]) -> Any:
        try:
            return await script(self._client, keys, args)
        except (RedisError, OSError) as exc:
            self._down_log.warn("Redis call %s failed: %s", script.name, exc)
            raise RedisUnavailable(f"{script.name}: {exc}") from exc


def _count_ips(batch: list[Ballot]) -> dict[str, int]:
    """How many ballots of the batch come from each IP, in order of first appearance."""
    wanted: dict[str, int] = {}
    for ballot in batch:
        wanted[ballot.ip_hash] = wanted.get(ballot.ip_hash, 0) + 1
    return wanted


def _resolve(ballot: Ballot, outcome: Outcome) -> None:
    if not ballot.future.done():  # the client may have gone away
        ballot.future.set_result(outcome)


def _fail(ballot: Ballot, exc: Exception) -> None:
    if not ballot.future.done():
        ballot.future.set_exception(exc)
