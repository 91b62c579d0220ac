"""Redis's eviction policy and memory, read with INFO memory from a real Redis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from tests.localhost import free_port
from tests.support import SECRET
from votesvc.errors import ConfigError
from votesvc.redis_server import EmbeddedRedis
from votesvc.redismemory import MemoryGuard, NodeMemory, RedisMemory, check_at_start, evicting
from votesvc.settings import Settings


@pytest.fixture
async def own_client(own_redis: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(own_redis.url)
    yield client
    await client.aclose()


def settings(url: str, tmp_path: Path, *, allow_eviction: bool = False) -> Settings:
    return Settings(data_dir=tmp_path, redis_url=url, secret=SECRET, allow_eviction=allow_eviction)


@pytest.mark.parametrize(
    ("policy", "evicts"),
    [
        ("noeviction", False),
        ("allkeys-lru", True),
        ("allkeys-lfu", True),
        ("allkeys-random", True),
        ("volatile-lru", True),
        ("volatile-ttl", True),
    ],
)
def test_which_policies_may_evict(policy: str, evicts: bool) -> None:
    assert evicting(policy) is evicts


async def test_the_embedded_default_is_read_and_accepted(own_client: aioredis.Redis) -> None:
    memory = await MemoryGuard(own_client, allow_eviction=False).report()
    info = await own_client.info("memory")
    assert memory.policy == "noeviction"
    assert memory.maxmemory == info["maxmemory"]
    assert memory.used_memory > 0
    assert memory.as_json() == {
        "used_memory": memory.used_memory,
        "maxmemory": memory.maxmemory,
        "policy": "noeviction",
    }


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru"])
async def test_an_evicting_policy_is_refused_in_one_line(
    own_client: aioredis.Redis, policy: str
) -> None:
    await own_client.config_set("maxmemory-policy", policy)
    with pytest.raises(ConfigError) as refused:
        await MemoryGuard(own_client, allow_eviction=False).report()
    message = str(refused.value)
    assert "\n" not in message
    assert f"maxmemory-policy {policy}" in message
    assert "VOTESVC_ALLOW_EVICTION=true" in message


async def test_allow_eviction_runs_with_one_warning(
    own_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    await own_client.config_set("maxmemory-policy", "allkeys-lru")
    guard = MemoryGuard(own_client, allow_eviction=True)
    with caplog.at_level(logging.WARNING, logger="votesvc.redismemory"):
        for _ in range(3):
            assert (await guard.report()).policy == "allkeys-lru"
    assert [r.message.count("allowed by VOTESVC_ALLOW_EVICTION") for r in caplog.records] == [1]


def test_check_at_start_refuses_an_evicting_redis(own_redis: EmbeddedRedis, tmp_path: Path) -> None:
    url = own_redis.url
    check_at_start(settings(url, tmp_path))  # noeviction: fine
    with redis.Redis.from_url(url) as client:
        client.config_set("maxmemory-policy", "allkeys-lru")
    with pytest.raises(ConfigError, match="allkeys-lru"):
        check_at_start(settings(url, tmp_path))
    check_at_start(settings(url, tmp_path, allow_eviction=True))


def test_check_at_start_lets_an_unreachable_redis_pass_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="votesvc.redismemory"):
        check_at_start(settings(url, tmp_path))
    assert "cannot read Redis's memory policy at start-up" in caplog.text


def test_a_cluster_report_sums_the_masters_and_says_mixed() -> None:
    memory = RedisMemory(
        (
            NodeMemory("a", 100, 1000, "noeviction"),
            NodeMemory("b", 50, 2000, "volatile-lru"),
        )
    )
    assert memory.as_json() == {"used_memory": 150, "maxmemory": 3000, "policy": "mixed"}
    assert "volatile-lru" in (memory.refusal() or "")
    unlimited = RedisMemory(
        (NodeMemory("a", 100, 1000, "noeviction"), NodeMemory("b", 5, 0, "noeviction"))
    )
    assert unlimited.as_json() == {"used_memory": 105, "maxmemory": 0, "policy": "noeviction"}
    assert unlimited.refusal() is None
