"""Redis's memory and eviction policy: what votesvc refuses and what it warns about.

votesvc's keys must never be evicted. Under a ``volatile-*`` policy Redis may
evict the keys that carry a TTL, the phones' day records: their daily quotas,
dedup and idempotency keys reset. Under ``allkeys-*`` it may evict anything,
vote streams included: accepted votes not yet in the ledger are lost. So a
policy that may evict stops ``votesvc serve`` and ``votesvc flush`` at start-up
and makes ``/readyz`` answer ``503``, unless ``VOTESVC_ALLOW_EVICTION=true``.
Past 80 % of ``maxmemory`` a warning is logged once: under ``noeviction`` a
full Redis refuses the writes, so votes fail.

The figures come from ``INFO memory`` on every master, not ``CONFIG GET``,
which managed services and ACLs forbid. A cluster's report sums the masters'
memory (``maxmemory`` is 0, no limit, when some master has none) and names
their policy, or ``"mixed"`` when they differ.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from votesvc.connection import RedisClient, connect
from votesvc.errors import ConfigError, RedisUnavailable
from votesvc.settings import ENV_PREFIX, Settings

__all__ = ["MemoryGuard", "NodeMemory", "RedisMemory", "check_at_start", "evicting", "read_memory"]

log = logging.getLogger(__name__)

HIGH_WATER = 0.8  # of maxmemory: warn past it
MIXED = "mixed"  # the policy of a cluster whose masters disagree


def evicting(policy: str) -> bool:
    """Whether ``policy`` lets Redis evict votesvc's keys (all but ``noeviction``)."""
    return policy.startswith(("allkeys-", "volatile-"))


@dataclass(frozen=True, slots=True)
class NodeMemory:
    """One master's ``INFO memory`` figures, in bytes (``maxmemory`` 0: no limit)."""

    name: str
    used_memory: int
    maxmemory: int
    policy: str

    @classmethod
    def from_info(cls, name: str, info: Mapping[str, Any]) -> NodeMemory:
        return cls(
            name,
            int(info["used_memory"]),
            int(info["maxmemory"]),
            str(info["maxmemory_policy"]),
        )

    @property
    def high(self) -> bool:
        """Past ``HIGH_WATER`` of a set ``maxmemory``."""
        return self.maxmemory > 0 and self.used_memory > HIGH_WATER * self.maxmemory


@dataclass(frozen=True, slots=True)
class RedisMemory:
    """Every master's figures, and their sum as ``/readyz`` shows it."""

    nodes: tuple[NodeMemory, ...]

    @property
    def used_memory(self) -> int:
        return sum(node.used_memory for node in self.nodes)

    @property
    def maxmemory(self) -> int:
        if any(node.maxmemory == 0 for node in self.nodes):
            return 0  # some master has no limit: so has the sum
        return sum(node.maxmemory for node in self.nodes)

    @property
    def policy(self) -> str:
        policies = {node.policy for node in self.nodes}
        return policies.pop() if len(policies) == 1 else MIXED

    def as_json(self) -> dict[str, Any]:
        return {"used_memory": self.used_memory, "maxmemory": self.maxmemory, "policy": self.policy}

    def refusal(self) -> str | None:
        """The one-line reason to refuse this Redis, or None when no policy may evict."""
        policies = sorted({node.policy for node in self.nodes if evicting(node.policy)})
        if not policies:
            return None
        return (
            f"Redis runs maxmemory-policy {', '.join(policies)}, which may evict votesvc's keys "
            "(volatile-*: the phones' day records, so quotas reset; allkeys-*: the vote streams, "
            "so accepted votes are lost): set maxmemory-policy noeviction, "
            f"or {ENV_PREFIX}ALLOW_EVICTION=true to run anyway"
        )


async def read_memory(client: RedisClient) -> RedisMemory:
    """``INFO memory`` of every master (raises redis-py's errors)."""
    if isinstance(client, RedisCluster):
        replies = await client.info("memory", target_nodes=RedisCluster.PRIMARIES)
        if "maxmemory_policy" in replies:  # a cluster of one master: its reply, not a dict of them
            replies = {"primary": replies}
        return RedisMemory(
            tuple(NodeMemory.from_info(name, info) for name, info in sorted(replies.items()))
        )
    return RedisMemory((NodeMemory.from_info("redis", await client.info("memory")),))


class MemoryGuard:
    """Reads the memory report, refuses an evicting policy, warns once when memory runs high.

    One guard per process (the app's, or a command's): each warning is logged once by it.
    """

    __slots__ = ("_allow_eviction", "_client", "_warned_eviction", "_warned_high")

    def __init__(self, client: RedisClient, *, allow_eviction: bool) -> None:
        self._client = client
        self._allow_eviction = allow_eviction
        self._warned_high = False
        self._warned_eviction = False

    async def report(self) -> RedisMemory:
        """The figures; ConfigError for an evicting policy, RedisUnavailable when unreachable."""
        try:
            memory = await read_memory(self._client)
        except (RedisError, RedisClusterException, OSError) as exc:
            raise RedisUnavailable(str(exc) or type(exc).__name__) from exc
        self.check(memory)
        return memory

    def check(self, memory: RedisMemory) -> None:
        refusal = memory.refusal()
        if refusal is not None:
            if not self._allow_eviction:
                raise ConfigError(refusal)
            if not self._warned_eviction:
                self._warned_eviction = True
                log.warning("%s (allowed by %sALLOW_EVICTION)", refusal, ENV_PREFIX)
        high = [node for node in memory.nodes if node.high]
        if high and not self._warned_high:
            self._warned_high = True
            for node in high:
                log.warning(
                    "Redis %s uses %d of its maxmemory %d bytes (%.0f%%, past %.0f%%): "
                    "when it is full, writes and so votes fail; give it more memory",
                    node.name,
                    node.used_memory,
                    node.maxmemory,
                    100 * node.used_memory / node.maxmemory,
                    100 * HIGH_WATER,
                )


def check_at_start(settings: Settings) -> None:
    """The start-up check of ``serve`` and ``flush``: ConfigError for an evicting policy.

    Redis unreachable now does not stop start-up: a warning, and ``/readyz`` says
    so later. Without ``redis_url`` (the embedded server, not started yet) there is
    nothing to check: votesvc starts it with Redis's default policy, noeviction.
    """
    if settings.redis_url is None:
        return

    async def check() -> None:
        client = connect(settings)
        try:
            await MemoryGuard(client, allow_eviction=settings.allow_eviction).report()
        except RedisUnavailable as exc:
            log.warning("cannot read Redis's memory policy at start-up (%s); /readyz will", exc)
        finally:
            await client.aclose()

    asyncio.run(check())
