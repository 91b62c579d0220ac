"""A throwaway PostgreSQL cluster for tests and the flusher benchmark.

``initdb`` refuses to run as root, so as root every server command runs as the
``postgres`` user (``runuser -u postgres --``) in a temporary directory it
owns. The server listens on a free loopback port and a unix socket there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.localhost import free_port

__all__ = ["PgCluster", "postgres_available"]


def postgres_available() -> bool:
    return all(shutil.which(tool) for tool in ("initdb", "pg_ctl", "postgres"))


class PgCluster:
    """``initdb`` + ``pg_ctl`` in a temp dir; ``durable=False`` turns fsync off (tests)."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.dir = Path(tempfile.mkdtemp(prefix="votesvc-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = ["runuser", "-u", "postgres", "--", *args] if self._as_root else list(args)
        subprocess.run(command, check=True, capture_output=True, timeout=timeout, cwd=self.dir)

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip

    def start(self) -> None:
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-k {self.dir}",
            "-c max_connections=200",
            "-c shared_buffers=256MB",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            "-o", " ".join(options), "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop()
            except subprocess.SubprocessError:
                pid = (self.data / "postmaster.pid").read_text().split()[0]
                os.kill(int(pid), 9)
        shutil.rmtree(self.dir, ignore_errors=True)
