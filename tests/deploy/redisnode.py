"""A redis-server of a test's own, started from one of deploy/redis/'s config files.

The config file is used as shipped, with what only a test changes given after it
on the command line (where Redis lets a later directive win): a free loopback
port, a temporary ``dir`` and log, no fsync, the ACL file the test rendered.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

import redis

from tests.deploy.tools import DEPLOY
from tests.localhost import free_port, wait_until
from votesvc.redis_server import find_redis_server

__all__ = ["PASSWORDS", "RedisNode", "redis_version", "render_acl"]

# One password per user of users.acl, as an operator would make them (openssl rand -hex 32).
PASSWORDS = {user: secrets.token_hex(32) for user in ("votesvc", "replica", "ops")}


def render_acl(
    target: Path, passwords: dict[str, str] = PASSWORDS
) -> subprocess.CompletedProcess[str]:
    """deploy/redis/users.acl rendered into ``target`` by the shipped render-acl.sh."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_PASSWORD_")}
    env |= {f"REDIS_PASSWORD_{user.upper()}": password for user, password in passwords.items()}
    return subprocess.run(
        ["sh", str(DEPLOY / "redis" / "render-acl.sh"), str(DEPLOY / "redis" / "users.acl"),
         str(target)],
        env=env, capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip


def redis_version() -> tuple[int, int]:
    """(major, minor) of the redis-server the tests start."""
    banner = subprocess.run(
        [find_redis_server(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"v=(\d+)\.(\d+)", banner)
    assert found is not None, banner
    return int(found[1]), int(found[2])


class RedisNode:
    def __init__(self, root: Path, config: Path, *overrides: str) -> None:
        self.root = root
        self.port = free_port(below=65536 - 10000)  # a cluster bus listens on port + 10000
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = root / "redis.log"
        self.args = [
            find_redis_server(), str(config),
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(root),
            "--logfile", str(self.log), "--daemonize", "no",
            # Not what these tests are about: a disk busy with other suites must not
            # stall Redis for seconds on an fsync (the files say `always`: test_compose).
            "--appendfsync", "no",
            *overrides,
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, user: str = "votesvc") -> str:
        return f"redis://{user}:{PASSWORDS[user]}@127.0.0.1:{self.port}"

    def client(self, user: str = "ops") -> redis.Redis:
        return redis.Redis(
            port=self.port, username=user, password=PASSWORDS[user], socket_timeout=5
        )

    def start(self) -> RedisNode:
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL)
        wait_until(self._answers, 15, f"redis-server on {self.port} (see {self.log})")
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = self.log.read_text()[-2000:] if self.log.exists() else "(no log: see stderr)"
            raise AssertionError(f"redis-server exited: {log}")
        client = self.client()
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:  # a replica refuses SIGTERM while it writes its first AOF: no waiting on it
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
