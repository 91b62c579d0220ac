"""Which ledger flushers are running: one heartbeat per flusher in a Redis hash.

The consumer group cannot tell: a consumer's idle time in XINFO CONSUMERS only
resets when it is given entries, so a flusher without traffic looks gone after
a few seconds. So every running flusher writes ``consumer -> now`` (the Redis
server's time, in ms) into ``Keys.flushers()`` every second (or every flush
interval, if shorter), whatever the traffic and even while its database is
down, and deletes its entry when it stops cleanly. ``votesvc restore`` reads
the hash to refuse while another flusher runs.

A consumer is named ``host-pid-nonce@scope``: ``nonce`` is 8 random hex digits
drawn once per process, so containers that share a hostname and all run as
pid 1 still get names of their own; ``scope`` (``processes.pid_scope()``, 12
hex digits) names the kernel boot and pid namespace the pid belongs to. The
scope travels in the name because the name is all that XINFO CONSUMERS and
the heartbeat hash hold about a consumer, however long ago it died: no other
record has to be kept, read or cleaned up. A consumer whose scope is this
process's and whose pid has ended is known dead at once, without waiting for
its heartbeat to age (or, in the flusher, for ``claim_after``). Any other
consumer, including one of another pid namespace on this host, one whose
scope is unknown, and a ``host-pid`` name from before the scope existed, is
judged by time alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import secrets
import socket
from typing import Any

from votesvc.connection import RedisClient
from votesvc.keys import Keys
from votesvc.ledger.backoff import REDIS_DOWN
from votesvc.logs import ThrottledLog
from votesvc.processes import pid_alive, pid_scope
from votesvc.scripts import load_script

__all__ = ["BEAT_EVERY", "Heartbeat", "consumer_name", "ended_here", "live_flushers"]

log = logging.getLogger(__name__)

BEAT_EVERY = 1.0  # seconds between heartbeats, at most
FORGET_AFTER = 3600.0  # seconds after which a silent flusher's entry is dropped


# host-pid-nonce@scope; the host may hold dashes (and a name without a scope
# is left to time: see the module docstring)
_NAME = re.compile(r".+-(?P<pid>[0-9]+)-[0-9a-f]{8}@(?P<scope>[0-9a-f]{12})")


def consumer_name() -> str:
    """This process's consumer name in the ledger group: ``host-pid-nonce@scope``."""
    return _consumer_name(os.getpid())  # a forked child gets a name of its own


@functools.cache
def _consumer_name(pid: int) -> str:
    scope = pid_scope()
    name = f"{socket.gethostname()}-{pid}-{secrets.token_hex(4)}"
    return name if scope is None else f"{name}@{scope}"


def ended_here(name: str) -> bool:
    """True if ``name`` is a consumer of this pid namespace whose process has ended."""
    parts = _NAME.fullmatch(name)
    if parts is None or parts["scope"] != pid_scope():
        return False
    return not pid_alive(int(parts["pid"]))


class Heartbeat:
    """The heartbeat of one flusher, ``consumer``."""

    def __init__(
        self, client: RedisClient, keys: Keys, consumer: str, *, every: float = BEAT_EVERY
    ) -> None:
        self._client = client
        self._key = keys.flushers()
        self._consumer = consumer
        self.every = min(every, BEAT_EVERY)
        self._failed = ThrottledLog(log, every=10.0)

    async def beat(self) -> None:
        """Record that this flusher is alive now; raises RedisError when Redis fails."""
        await _call(self._client, self._key, self._consumer)

    async def run(self, stop: asyncio.Event) -> None:
        """Beat every ``every`` seconds until ``stop`` is set (or the task is cancelled).

        A beat that fails because Redis is down is not logged: the flusher
        reports Redis outages itself. Whatever a beat raises, the beating goes
        on, since a flusher that stops beating looks stopped to ``restore``:
        redis-py's cluster client has raised AttributeError (a connection closed
        under a call while it learnt the cluster again, in an outage).
        """
        while not stop.is_set():
            try:
                await self.beat()
            except REDIS_DOWN:
                pass
            except Exception as exc:
                self._failed.warn("flusher heartbeat failed (%r); beating on", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)

    async def forget(self) -> None:
        """Delete this flusher's entry (on a clean exit); a Redis failure is ignored."""
        with contextlib.suppress(*REDIS_DOWN):
            await self._client.hdel(self._key, self._consumer)


async def live_flushers(
    client: RedisClient, keys: Keys, *, within: float, besides: str = ""
) -> dict[str, float]:
    """Flushers heard from in the last ``within`` seconds: name -> seconds since."""
    reply = await _call(client, keys.flushers(), "")
    now_ms = int(reply[0])
    live: dict[str, float] = {}
    for raw_name, raw_ms in zip(reply[1::2], reply[2::2], strict=True):
        name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
        age = max(now_ms - int(raw_ms), 0) / 1000
        if name != besides and age < within and not ended_here(name):
            live[name] = age
    return live


async def _call(client: RedisClient, key: str, consumer: str) -> list[Any]:
    script = load_script("ledger_beat")
    reply: list[Any] = await script(client, [key], [consumer, int(FORGET_AFTER * 1000)])
    return reply
