"""A throwaway three-master Redis Cluster on loopback, for the cluster tests."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import redis

from tests.localhost import free_port, wait_until
from votesvc.redis_server import find_redis_server


class LocalCluster:
    def __init__(self, root: Path, masters: int = 3) -> None:
        self.root = root
        # the cluster bus listens on port + 10000: keep both in range
        self.ports = [free_port(below=65536 - 10000) for _ in range(masters)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self, within: float = 30.0) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is missing: run `make setup-test`")
        server = find_redis_server()
        for port in self.ports:
            node = self.root / str(port)
            node.mkdir(parents=True)
            self.processes.append(
                subprocess.Popen(
                    [server, "--port", str(port), "--bind", "127.0.0.1",
                     "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--dir", str(node), "--save", "", "--appendonly", "no",
                     "--logfile", str(node / "redis.log")],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for port in self.ports:
            wait_until(functools.partial(self._answers, port), within, f"cluster node {port} up")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=within,
        )  # fmt: skip
        wait_until(
            lambda: all(self._state_ok(port) for port in self.ports), within, "cluster state ok"
        )

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    @staticmethod
    def _client(port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1)

    def _answers(self, port: int) -> bool:
        client = self._client(port)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _state_ok(self, port: int) -> bool:
        client = self._client(port)
        try:
            info = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
        except redis.RedisError:
            return False
        finally:
            client.close()
        if isinstance(info, dict):  # redis-py parses the reply
            return str(info.get("cluster_state")) == "ok"
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "cluster_state:ok" in text
