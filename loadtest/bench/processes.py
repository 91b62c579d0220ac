"""The processes a benchmark run starts: CPU pinning, CPU time, stopping, readiness.

Figures are per CPU-second, so each process's place and cost is read from
``/proc`` rather than guessed from wall time.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"  # every server the benchmark starts binds it (their default too)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def need_tools() -> None:
    missing = [tool for tool in ("wrk", "redis-benchmark", "taskset") if not shutil.which(tool)]
    if missing:
        sys.exit(
            f"bench: missing {', '.join(missing)}; "
            "as root run: bash deploy/system-packages.sh bench"
        )


@dataclass
class Pinning:
    server: str  # taskset CPU list for a one-worker server
    server_multi: str  # for several workers
    load: str  # wrk
    text: str

    @classmethod
    def plan(cls) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0))
        every = ",".join(map(str, cpus))
        if len(cpus) < 2:
            return cls(every, every, every, f"not pinned ({len(cpus)} CPU)")
        first, rest = str(cpus[0]), ",".join(map(str, cpus[1:]))
        return cls(
            first,
            every,
            rest,
            f"a 1-worker server on CPU {first}; wrk and the flusher on CPU {rest}; "
            f"2 workers on CPUs {every}; Redis not pinned (it takes the CPU time the others "
            f"leave); redis-benchmark on CPU {first}",
        )


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLK_TCK


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def stop(process: subprocess.Popen[Any], sig: int = signal.SIGINT, timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {url} did not answer within {timeout}s")
        time.sleep(0.1)
