"""A throwaway three-master Redis Cluster on loopback, for the cluster tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from votesvc.redis_server import find_redis_server


def _free_port() -> int:
    # the cluster bus listens on port + 10000: keep both in range
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port + 10000 < 65536:
            return port


class LocalCluster:
    def __init__(self, root: Path, masters: int = 3) -> None:
        self.root = root
        self.ports = [_free_port() for _ in range(masters)]
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
        deadline = time.monotonic() + within
        for port in self.ports:
            while not self._answers(port):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster node {port} did not start")
                time.sleep(0.05)
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=within,
        )  # fmt: skip
        while not all(self._state_ok(port) for port in self.ports):
            if time.monotonic() > deadline:
                raise RuntimeError("cluster did not reach state ok")
            time.sleep(0.05)

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
            info = client.execute_command("CLUSTER INFO")
        except redis.RedisError:
            return False
        finally:
            client.close()
        if isinstance(info, dict):  # redis-py parses the reply
            return str(info.get("cluster_state")) == "ok"
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "cluster_state:ok" in text
