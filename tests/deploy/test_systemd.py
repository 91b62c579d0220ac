"""deploy/systemd/: the sysusers file creates the votesvc user, the units create its data
directory, and `systemd-analyze verify` finds nothing to say about them. Both run on a
scratch root directory, never on this machine's own /etc."""

from __future__ import annotations

import configparser
import shutil
from pathlib import Path

from tests.deploy.tools import DEPLOY, documented_settings, require, run

SYSTEMD = DEPLOY / "systemd"
UNITS = ("votesvc.service", "votesvc-flush.service")
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def test_sysusers_creates_the_user_the_units_run_as(tmp_path: Path) -> None:
    sysusers = require("systemd-sysusers", "Debian's systemd: deploy/system-packages.sh test")
    (tmp_path / "etc").mkdir()
    run(sysusers, f"--root={tmp_path}", SYSTEMD / "votesvc.sysusers")
    passwd = (tmp_path / "etc/passwd").read_text().splitlines()
    users = {line.split(":")[0]: line.split(":") for line in passwd}
    entry = users["votesvc"]
    assert entry[5] == "/var/lib/votesvc"
    assert entry[6] == "/usr/sbin/nologin"
    for name in UNITS:
        service = unit(name)["Service"]
        assert service["User"] == service["Group"] == "votesvc"
        assert service["StateDirectory"] == "votesvc"  # /var/lib/votesvc, owned by votesvc


def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    analyze = require("systemd-analyze", "Debian's systemd: deploy/system-packages.sh test")
    if not SYSTEM_UNITS.is_dir():  # pragma: no cover - systemd's package ships it
        raise AssertionError(f"{SYSTEM_UNITS} is missing")
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name in UNITS:
        shutil.copy(SYSTEMD / name, root / "etc/systemd/system" / name)
        command = unit(name)["Service"]["ExecStart"].split()[0]
        stub = root / command.lstrip("/")  # what deploy/README.md step 1 installs
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    assert run(analyze, "verify", f"--root={root}", *UNITS).strip() == ""


def test_the_units_settings_are_votesvc_s() -> None:
    known = documented_settings()
    ports = set()
    for name in UNITS:
        for assignment in unit(name)["Service"]["Environment"].split():
            variable, _, value = assignment.partition("=")
            assert variable in known
            if variable == "VOTESVC_METRICS_PORT":
                ports.add(value)
    assert len(ports) == len(UNITS)  # both can run on one host
    example = (DEPLOY / "votesvc.env.example").read_text().splitlines()
    for line in example:
        if line and not line.startswith("#"):
            assert line.split("=", 1)[0] in known, line
