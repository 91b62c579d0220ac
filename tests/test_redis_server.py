"""The embedded Redis server (votesvc/redis_server.py), as a real process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from votesvc.redis_server import EmbeddedRedis


def test_a_reused_server_takes_the_appendfsync_policy_of_the_new_owner(tmp_path: Path) -> None:
    # left running by an earlier serve that used everysec (or an older version)
    earlier = EmbeddedRedis(tmp_path, appendfsync="everysec")
    assert earlier.start()
    try:
        owner = EmbeddedRedis(tmp_path)  # the default: a 201 is on disk before it is sent
        assert not owner.start()  # reused, not started again
        client = redis.Redis(unix_socket_path=str(owner.socket))
        try:
            assert client.config_get("appendfsync") == {"appendfsync": "always"}
        finally:
            client.close()
    finally:
        earlier.stop()


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is none of ours."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait(timeout=10)


def test_a_stale_pid_file_naming_another_process_leaves_it_alone(
    tmp_path: Path, stranger: subprocess.Popen[bytes]
) -> None:
    # the pid file of a server gone with a reboot; its pid now belongs to someone else
    server = EmbeddedRedis(tmp_path)
    server.dir.mkdir(parents=True)
    server.pidfile.write_text(f"{stranger.pid}\n")
    assert not server.owns(stranger.pid)
    assert server.start()  # started its own
    try:
        assert server.ping()
        assert server.pid() not in (None, stranger.pid)
        assert stranger.poll() is None  # never signalled
    finally:
        server.stop()
    assert stranger.poll() is None


def test_a_pid_file_naming_the_redis_of_another_data_dir_leaves_it_alone(tmp_path: Path) -> None:
    other = EmbeddedRedis(tmp_path / "other")
    assert other.start()
    try:
        other_pid = other.pid()
        assert other_pid is not None
        assert other.owns(other_pid)
        server = EmbeddedRedis(tmp_path / "mine")
        server.dir.mkdir(parents=True)
        server.pidfile.write_text(f"{other_pid}\n")
        assert not server.owns(other_pid)  # a redis-server, but not this data dir's
        assert server.start()
        try:
            assert server.ping()
            assert other.ping()
            assert server.pid() not in (None, other_pid)
        finally:
            server.stop()
        assert other.pid() == other_pid
        assert other.ping()
    finally:
        other.stop()
