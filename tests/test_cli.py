"""`votesvc serve` as an operator runs it: a real process, a real port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from tests.localhost import free_port, wait_until
from tests.serving import Serve
from tests.support import campaign_toml
from votesvc.campaign import demo_campaign_text
from votesvc.processes import pid_alive
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import PLACEHOLDER_SECRET

pytestmark = pytest.mark.slow


def test_serve_runs_the_demo_on_embedded_redis_and_stops_cleanly(
    tmp_path: Path, serve: list[Serve]
) -> None:
    run = Serve(tmp_path / "data")
    serve.append(run)
    wait_until(run.healthy)
    vote = httpx.post(run.url + "/v1/votes", json={"nominee": "N07", "phone": "13800138000"})
    assert vote.status_code == 201
    assert "http://127.0.0.1:" in run.output()
    redis_pid = EmbeddedRedis(run.data_dir).pid()
    assert redis_pid is not None
    assert run.stop() == 0
    wait_until(lambda: not pid_alive(redis_pid))
    assert (run.data_dir / "secret").stat().st_mode & 0o777 == 0o600
    assert "Traceback" not in run.output()


def test_a_killed_serve_leaves_redis_that_the_next_start_reuses(
    tmp_path: Path, serve: list[Serve]
) -> None:
    first = Serve(tmp_path / "data")
    serve.append(first)
    wait_until(first.healthy)
    body = {"nominee": "N01", "phone": "13800138000"}
    assert httpx.post(first.url + "/v1/votes", json=body).status_code == 201
    first.stop(signal.SIGKILL)
    embedded = EmbeddedRedis(first.data_dir)
    assert embedded.ping()  # left behind

    second = Serve(tmp_path / "data")
    serve.append(second)
    wait_until(second.healthy)
    assert "using the embedded Redis already running" in second.output()
    # the same phone is remembered: same Redis, same secret
    again = httpx.post(second.url + "/v1/votes", json=body)
    assert again.status_code == 409
    assert second.stop() == 0
    assert not embedded.ping()


def test_a_bad_campaign_file_stops_start_up_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(campaign_toml().replace('id = "N02"', 'id = "N01"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
    env |= {"VOTESVC_CAMPAIGN": str(bad), "VOTESVC_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "votesvc", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"votesvc: campaign file {bad}: duplicate nominee id 'N01'"
    assert not EmbeddedRedis(tmp_path / "data").ping()


def test_a_redis_that_may_evict_stops_start_up_with_one_line(
    tmp_path: Path, own_redis: EmbeddedRedis
) -> None:
    with redis.Redis.from_url(own_redis.url) as client:
        client.config_set("maxmemory-policy", "allkeys-lru")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
    env |= {"VOTESVC_REDIS_URL": own_redis.url, "VOTESVC_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "votesvc", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""  # stopped before serving anything
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("votesvc: Redis runs maxmemory-policy allkeys-lru, which may evict")
    assert line.endswith("or VOTESVC_ALLOW_EVICTION=true to run anyway")


def test_allow_eviction_lets_serve_start_on_such_a_redis(
    tmp_path: Path, own_redis: EmbeddedRedis, serve: list[Serve]
) -> None:
    with redis.Redis.from_url(own_redis.url) as client:
        client.config_set("maxmemory-policy", "allkeys-lru")
    env = {"VOTESVC_REDIS_URL": own_redis.url, "VOTESVC_ALLOW_EVICTION": "true"}
    run = Serve(tmp_path / "data", extra_env=env)
    serve.append(run)
    wait_until(run.healthy)
    assert httpx.get(run.url + "/readyz").json()["redis"]["policy"] == "allkeys-lru"
    assert run.stop() == 0
    assert "allowed by VOTESVC_ALLOW_EVICTION" in run.output()


def test_bad_settings_stop_start_up_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
    env |= {"VOTESVC_TALLY_REFRESH": "soon", "VOTESVC_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "votesvc", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "votesvc: VOTESVC_TALLY_REFRESH='soon' is not a number"


def test_the_example_secret_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
    env |= {"VOTESVC_SECRET": PLACEHOLDER_SECRET, "VOTESVC_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "votesvc", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("votesvc: VOTESVC_SECRET is still the placeholder of deploy/")
    assert not (tmp_path / "data" / "redis").exists()  # nothing was started


def test_a_database_url_of_another_kind_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
    env |= {"VOTESVC_DATABASE_URL": "mysql://x", "VOTESVC_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "votesvc", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("votesvc: VOTESVC_DATABASE_URL='mysql://x' must look like postgresql://")
    assert "sqlite://" in line
    assert not (tmp_path / "data" / "redis").exists()  # nothing was started


def test_serve_restarts_an_embedded_redis_that_died(tmp_path: Path, serve: list[Serve]) -> None:
    # The demo campaign, but an IP limit that 800 votes from this one address never reach:
    # the test is about the AOF, and a loaded machine stretches the votes over the window.
    campaign = tmp_path / "campaign.toml"
    demo = demo_campaign_text()
    assert "ip_limit = 600 " in demo
    campaign.write_text(demo.replace("ip_limit = 600 ", "ip_limit = 100000 "))
    run = Serve(tmp_path / "data", campaign)
    serve.append(run)
    wait_until(run.healthy)
    embedded = EmbeddedRedis(run.data_dir)
    first_pid = embedded.pid()
    assert first_pid is not None
    phones = [f"138{n:08d}" for n in range(400)]
    accepted: list[str] = []
    killed = threading.Event()

    def vote(client: httpx.Client, phone: str) -> None:
        if phone == phones[100]:
            os.kill(first_pid, signal.SIGKILL)  # mid-stream: votes are in flight around it
            killed.set()
        try:
            reply = client.post(run.url + "/v1/votes", json={"nominee": "N03", "phone": phone})
        except httpx.HTTPError:
            return
        if reply.status_code == 201:
            accepted.append(phone)

    with httpx.Client(timeout=5) as client, ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda phone: vote(client, phone), phones))
    assert killed.is_set()
    assert len(accepted) >= 50  # at least those answered before the kill
    wait_until(lambda: embedded.pid() not in (None, first_pid) and run.healthy())
    # appendfsync always: every vote answered 201 was on disk before its answer,
    # so the AOF brought each one back with the new server
    with httpx.Client(timeout=5) as client:
        again = {
            client.post(run.url + "/v1/votes", json={"nominee": "N03", "phone": phone}).status_code
            for phone in accepted
        }
    assert again == {409}
    assert "has died; starting it again" in run.output()
    assert run.stop() == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "99999"], "argument --port: 99999 is not between 1 and 65535"),
        (["--workers", "0"], "argument --workers: 0 is not between 1 and 512"),
        (["--port", "http"], "argument --port: 'http' is not a whole number"),
    ],
)
def test_serve_rejects_bad_flags(tmp_path: Path, flags: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "votesvc", "serve", *flags],
        env={**os.environ, "VOTESVC_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
