"""The checkers the deploy tests run: found on PATH or beside the test's Python.

A missing one skips its test on a developer's machine and fails it under ``CI``,
whose ``make test`` installs them all (``deploy/system-packages.sh test`` as root
for Debian's binaries, the ``dev`` extra for the Python ones).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["DEPLOY", "REPO", "documented_settings", "require", "run"]

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def require(name: str, installed_by: str) -> str:
    """The path of the program ``name``; skip (fail under CI) when it is missing."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.is_file() else shutil.which(name)
    if found is None:
        missing = f"{name} is missing ({installed_by})"
        if os.environ.get("CI"):  # CI's `make test` installs it: its absence is a failure there
            pytest.fail(missing)
        pytest.skip(missing)
    return found


def run(
    *argv: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> str:
    """Run a checker; fail the test with its output unless it exits 0."""
    done = subprocess.run(
        [str(arg) for arg in argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(map(str, argv))} exited {done.returncode}:\n{output}"
    return output


def documented_settings() -> set[str]:
    """The ``VOTESVC_*`` variables README's Settings table documents (a few have a
    ``_FILE`` twin, named in their row)."""
    names = set()
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("| `VOTESVC_"):
            row = line.split("|")
            names.add(row[1].strip().strip("`"))
            names.update(re.findall(r"`(VOTESVC_\w+_FILE)`", row[3]))
    return names
