"""The vote path and the tally against a real three-master Redis Cluster."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from tests.cluster import LocalCluster
from tests.support import make_campaign, phone, running_service
from votesvc.errors import ConfigError
from votesvc.redismemory import MemoryGuard, read_memory

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if shutil.which("redis-cli") is None:  # `make setup-test` installs it as root
        pytest.skip("redis-cli (Debian redis-tools) is needed to form a cluster")
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        local.start()
        yield local
    finally:
        local.stop()


async def test_votes_and_tally_on_a_cluster(cluster: LocalCluster, tmp_path: Path) -> None:
    campaign = make_campaign(campaign_id="cluster-test", ip_limit=3)
    async with running_service(cluster.url, tmp_path, campaign=campaign, redis_cluster=True) as svc:
        responses = await asyncio.gather(
            *(svc.vote(f"N{n % 30 + 1:02d}", phone(n), peer=f"192.0.2.{n % 40}")
              for n in range(200))
        )  # fmt: skip
        statuses = [r.status_code for r in responses]
        # 40 client IPs with a limit of 3 each: 120 votes pass the IP step
        assert statuses.count(201) == 120
        assert statuses.count(429) == 80
        again = await svc.vote("N01", phone(0), peer="198.51.100.1")
        assert again.status_code == 409
        tally = await svc.fresh_tally()
        assert tally["total"] == 120
        assert (await svc.client.get("/readyz")).status_code == 200

    client = RedisCluster.from_url(cluster.url)
    try:
        nodes_with_counters = set()
        for key in svc.app.state.keys.tallies():
            if await client.exists(key):
                node = client.get_node_from_key(key)
                assert node is not None
                nodes_with_counters.add(node.name)
        # the counter shards are spread over the masters
        assert len(nodes_with_counters) > 1
    finally:
        await client.aclose()


async def test_the_memory_report_covers_every_master(cluster: LocalCluster, tmp_path: Path) -> None:
    client = RedisCluster.from_url(cluster.url)
    try:
        memory = await read_memory(client)
        assert len(memory.nodes) == 3
        assert memory.policy == "noeviction"
        async with running_service(cluster.url, tmp_path, redis_cluster=True) as svc:
            ready = await svc.client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["redis"]["policy"] == "noeviction"
            assert ready.json()["redis"]["maxmemory"] == 0  # no master has a limit
        node = client.get_primaries()[-1]
        await client.config_set("maxmemory-policy", "volatile-lru", target_nodes=node)
        try:
            assert (await read_memory(client)).policy == "mixed"
            with pytest.raises(ConfigError, match="maxmemory-policy volatile-lru"):
                await MemoryGuard(client, allow_eviction=False).report()
        finally:
            await client.config_set("maxmemory-policy", "noeviction", target_nodes=node)
    finally:
        await client.aclose()
