"""A real `votesvc serve` process on a free port, and a fixture that cleans up after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.localhost import free_port
from votesvc.redis_server import EmbeddedRedis


class Serve:
    def __init__(
        self,
        data_dir: Path,
        campaign: Path | None = None,
        extra_env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
        env["VOTESVC_DATA_DIR"] = str(data_dir)
        env |= extra_env or {}
        if campaign is not None:
            env["VOTESVC_CAMPAIGN"] = str(campaign)
        self.log = data_dir / f"serve-{self.port}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "votesvc", "serve", "--port", str(self.port), *(args or [])],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the teardown kills its workers too
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=20)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for run in started:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)  # with --workers N, the workers too
            run.proc.wait(timeout=10)
    leftover = EmbeddedRedis(tmp_path / "data")
    if leftover.ping():
        leftover.stop()
