"""A campaign's start on the ledger side: stored codes, refused mismatches, lost Redis data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.localhost import free_port
from tests.support import SECRET, campaign_toml, phone, running_service
from votesvc.campaign import parse_campaign
from votesvc.keys import Keys
from votesvc.meta import read_mirror
from votesvc.redis_server import EmbeddedRedis


def without(nominee: str, text: str) -> str:
    """A campaign file with ``nominee`` withdrawn."""
    head, *blocks = text.split("[[nominees]]")
    kept = [block for block in blocks if f'id = "{nominee}"' not in block]
    return "[[nominees]]".join([head, *kept])


def with_extra(nominee: str, text: str) -> str:
    return (
        text
        + f'\n[[nominees]]\nid = "{nominee}"\nname = "New"\ntrade = "welder"\n'
        + ('employer = "Works"\n')
    )


async def test_withdrawing_a_nominee_moves_no_other_code(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    text = campaign_toml(nominees=10)
    async with running_service(redis_server.url, tmp_path, campaign=parse_campaign(text)) as svc:
        assert (await svc.vote("N06", phone(1))).status_code == 201
    # N05 is withdrawn mid-campaign: N06 keeps its code, so the phone's record still
    # says it voted for N06 today.
    withdrawn = parse_campaign(without("N05", text))
    async with running_service(redis_server.url, tmp_path, campaign=withdrawn) as svc:
        again = await svc.vote("N06", phone(1))
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "already_voted"
        assert (await svc.vote("N07", phone(1))).status_code == 201
    # A new nominee takes a code never given, not N05's retired one.
    grown = parse_campaign(with_extra("N11", without("N05", text)))
    async with running_service(redis_server.url, tmp_path, campaign=grown) as svc:
        meta = await read_mirror(redis, Keys(grown.id, 16))
        assert meta is not None
        assert meta.codes["N05"] == "E"
        assert meta.codes["N11"] == "K"  # the first never given (A..J went to N01..N10)
        assert (await svc.vote("N11", phone(1))).status_code == 201


def serve_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
    return env | {"VOTESVC_DATA_DIR": str(data_dir), "VOTESVC_SECRET": SECRET.decode(), **extra}


def votesvc(
    env: dict[str, str], *argv: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "votesvc", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"VOTESVC_SHARDS": "8"}, "VOTESVC_SHARDS=16; this start has 8"),
        ({"VOTESVC_SECRET": "another-secret-of-at-least-32-chars"}, "another VOTESVC_SECRET"),
    ],
)
def test_a_start_that_disagrees_with_the_campaign_is_refused_with_one_line(
    tmp_path: Path, change: dict[str, str], named: str
) -> None:
    data = tmp_path / "data"
    first = votesvc(serve_env(data), "flush", "--once")  # the campaign's first start
    assert first.returncode == 0, first.stderr
    for argv in (("serve", "--port", str(free_port())), ("flush", "--once")):
        refused = votesvc(serve_env(data, **change), *argv)
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        if argv[0] == "flush":  # a ledger command names its ledger first
            assert lines.pop(0) == f"votesvc: ledger sqlite:///{data / 'ledger.sqlite3'}"
        [line] = lines
        assert line.startswith("votesvc: campaign craftsman-2026 runs with")
        assert named in line
    assert not EmbeddedRedis(data).ping()  # the refused serve stopped the Redis it started


async def test_lost_redis_data_is_noticed_and_votes_wait_for_restore(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, caplog: Any
) -> None:
    async with running_service(redis_server.url, tmp_path) as svc:
        assert (await svc.vote("N01", phone(1))).status_code == 201
        await redis.flushall()  # Redis lost everything (or restarted from an old snapshot)
        lost = await svc.vote("N02", phone(2))
        assert lost.status_code == 503
        assert lost.json()["error"]["code"] == "unavailable"
        ready = await svc.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"] == "redis_data_lost"
        assert "votesvc restore" in caplog.text
        assert await redis.dbsize() == 0  # the refused vote wrote nothing
