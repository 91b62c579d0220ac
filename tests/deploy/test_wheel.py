"""The wheel works outside the checkout: built from what the Dockerfile copies into its
build stage, installed into a fresh virtualenv, it serves the demo campaign (its Lua,
campaign and static files come from the wheel) from a directory that is not the checkout.

Offline: the wheel is built without build isolation (setuptools of the dev extra), and
the fresh venv reaches the dependencies already installed in the test's own venv through
a .pth file (not the test venv's own .pth files: its editable votesvc stays out).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx

from tests.deploy.dockerfile import copied_sources
from tests.deploy.tools import REPO, run
from tests.localhost import free_port, wait_until
from votesvc.redis_server import EmbeddedRedis

# Nothing of this copy of votesvc is measured by the suite's coverage (its paths are not
# the checkout's), and no VOTESVC_ setting of the caller leaks in.
CLEAN_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith(("VOTESVC_", "COVERAGE_", "PYTHON"))
}


def build_wheel(tmp_path: Path) -> Path:
    context = tmp_path / "context"
    context.mkdir()
    for source in copied_sources():  # the Dockerfile's build context, no more
        if (REPO / source).is_dir():
            shutil.copytree(
                REPO / source, context / source, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(REPO / source, context / source)
    dist = tmp_path / "dist"
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "--disable-pip-version-check", "--quiet", "--wheel-dir", dist, context,
        env=CLEAN_ENV,
    )  # fmt: skip
    [wheel] = dist.glob("votesvc-*.whl")
    return wheel


def packaged(root: Path, pattern: str) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.glob(pattern)}


def test_the_wheel_serves_the_demo_from_a_fresh_venv(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    package = REPO / "votesvc"
    for pattern in ("lua/*.lua", "campaigns/*.toml", "static/**/*.*"):
        assert {f"votesvc/{name}" for name in packaged(package, pattern)} <= names, pattern

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, env=CLEAN_ENV)
    python = venv / "bin" / "python"
    run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
        "--disable-pip-version-check", "--quiet", wheel,
        env=CLEAN_ENV,
    )  # fmt: skip
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
            env=CLEAN_ENV,
        ).strip()
    )
    (site / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"  # cwd: not the checkout, nothing of it on the path
    elsewhere.mkdir()
    env = {**CLEAN_ENV, "VOTESVC_DATA_DIR": str(elsewhere / "data")}
    where = run(python, "-c", "import votesvc; print(votesvc.__file__)", cwd=elsewhere, env=env)
    assert where.strip().startswith(str(site))

    port = free_port()
    log = (elsewhere / "serve.log").open("w")
    serve = subprocess.Popen(
        [venv / "bin" / "votesvc", "serve", "--port", str(port)],
        cwd=elsewhere, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if serve.poll() is not None:
                raise AssertionError((elsewhere / "serve.log").read_text())
            try:
                return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 30, "the wheel's votesvc ready")
        nominees = httpx.get(f"{base}/v1/nominees", timeout=5)
        assert nominees.status_code == 200
        assert nominees.json()["campaign"]["id"] == "craftsman-2026"  # the packaged demo
        vote = httpx.post(
            f"{base}/v1/votes", json={"nominee": "N01", "phone": "13800138000"}, timeout=5
        )
        assert vote.status_code == 201, vote.text
        page = httpx.get(f"{base}/", timeout=5)
        assert page.status_code == 200
        assert "<html" in page.text
        script = httpx.get(f"{base}/static/campaign.js", timeout=5)
        assert script.status_code == 200
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(timeout=10)
        log.close()
        leftover = EmbeddedRedis(elsewhere / "data")
        if leftover.ping():
            leftover.stop()
    assert serve.returncode == 0, (elsewhere / "serve.log").read_text()
