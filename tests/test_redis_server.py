"""The embedded Redis server (votesvc/redis_server.py), as a real process."""

from __future__ import annotations

from pathlib import Path

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
