"""Logs an operator can read and filter: text by default, JSON lines on request."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import orjson
import pytest

from tests.localhost import wait_until
from tests.serving import Serve
from votesvc.logs import AccessFilter, ContextFilter, JsonFormatter, ThrottledLog


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("votesvc.test", logging.WARNING, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_a_json_line_has_the_fields_an_operator_filters_on() -> None:
    line = record("flushed %d votes", 12, outcome="written", duration=0.25, color_message="x")
    ContextFilter("craftsman-2026").filter(line)
    data = orjson.loads(JsonFormatter().format(line))
    assert data["level"] == "WARNING"
    assert data["logger"] == "votesvc.test"
    assert data["message"] == "flushed 12 votes"
    assert data["campaign"] == "craftsman-2026"
    assert isinstance(data["worker"], int)
    assert data["outcome"] == "written"
    assert data["duration"] == 0.25
    assert data["time"].endswith("+00:00")
    assert "color_message" not in data  # uvicorn's coloured copy stays out


def test_the_access_log_never_shows_the_client_address() -> None:
    line = record('%s - "%s %s HTTP/%s" %d', "203.0.113.9:51000", "POST", "/v1/votes", "1.1", 201)
    AccessFilter(b"s" * 32).filter(line)
    message = line.getMessage()
    assert "203.0.113.9" not in message
    assert message.startswith("client-")
    again = record('%s - "%s %s HTTP/%s" %d', "203.0.113.9:52000", "GET", "/", "1.1", 200)
    AccessFilter(b"s" * 32).filter(again)
    assert again.getMessage().split()[0] == message.split()[0]  # one client, one hash


def test_throttled_log_counts_what_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    throttled = ThrottledLog(logging.getLogger("votesvc.test"), every=3600)
    for _ in range(3):
        throttled.warn("Redis is down")
    assert [r.getMessage() for r in caplog.records] == ["Redis is down"]


@pytest.mark.slow
def test_serve_writes_json_lines(tmp_path: Path, serve: list[Serve]) -> None:
    run = Serve(tmp_path / "data", extra_env={"VOTESVC_LOG_FORMAT": "json"}, args=["--access-log"])
    serve.append(run)
    wait_until(run.healthy)
    vote = httpx.post(run.url + "/v1/votes", json={"nominee": "N07", "phone": "13800138000"})
    assert vote.status_code == 201
    assert run.stop() == 0
    lines = [line for line in run.output().splitlines() if line.startswith("{")]
    records = [orjson.loads(line) for line in lines]
    assert records
    for data in records:
        assert {"time", "level", "logger", "message", "worker"} <= data.keys()
    served = [d for d in records if d["logger"].startswith(("votesvc.app", "uvicorn"))]
    assert {d["campaign"] for d in served} == {"craftsman-2026"}
    access = [d for d in records if d["logger"] == "uvicorn.access"]
    assert any("/v1/votes" in d["message"] for d in access)
    assert not any("127.0.0.1" in d["message"] for d in access)
    assert "13800138000" not in run.output()
