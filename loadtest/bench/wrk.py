"""Driving wrk: one run of one Lua script, read back as a :class:`Run`.

The scripts in ``loadtest/wrk`` print one ``WRK {json}`` line at the end, so
nothing here parses wrk's human-readable summary.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK_DIR = Path(__file__).resolve().parent.parent / "wrk"


@dataclass
class Run:
    requests: int
    seconds: float
    errors: int  # non-2xx/3xx replies and socket errors
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk(
    url: str,
    script: str,
    seconds: float,
    connections: int,
    args: list[str] | None = None,
    cpus: str = "",
) -> Run:
    command = ["taskset", "-c", cpus] if cpus else []
    command += ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "-s", script, url]
    if args:
        command += ["--", *args]
    result = subprocess.run(
        command, cwd=WRK_DIR, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("WRK ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed: {result.stderr or result.stdout}")
    data = json.loads(line[4:])
    kinds = ("connect", "read", "write", "status", "timeout")
    errors = sum(data[k] for k in kinds)
    if errors:
        found = ", ".join(f"{k} {data[k]}" for k in kinds if data[k])
        print(f"    wrk {script} at {connections} connections: errors: {found}", flush=True)
    return Run(
        data["requests"],
        data["duration_us"] / 1e6,
        errors,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
    )


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


class Phones:
    """Disjoint ranges of fresh phone numbers, one per wrk run."""

    def __init__(self) -> None:
        self.next = 13_000_000_000

    def take(self) -> str:
        start, self.next = self.next, self.next + 50_000_000
        return str(start)
