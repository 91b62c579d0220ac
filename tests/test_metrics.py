"""/metrics as ops scrape it: serve with two workers, a flush process, promtool."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.localhost import free_port, wait_until
from tests.serving import Serve
from tests.support import SECRET, phone
from votesvc.metrics import SCRIPT_BUCKETS, VOTE_BUCKETS, Metrics, VoteStats, WorkerCollector
from votesvc.redis_server import EmbeddedRedis


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


def test_vote_stats_push_as_observe_would() -> None:
    stats, metrics = VoteStats(), Metrics()
    registry = CollectorRegistry()
    reference = Histogram("reference", "same", buckets=VOTE_BUCKETS, registry=registry)
    durations = [0.0004, 0.001, 0.0011, 0.003, 0.2, 7.0, 0.05]
    for seconds in durations:
        stats.record("accepted", seconds)
        reference.observe(seconds)
    stats.record("already_voted", 0.002)
    reference.observe(0.002)
    stats.push(metrics)
    stats.push(metrics)  # nothing new: nothing added
    ours = samples(generate_latest(metrics.registry).decode())
    theirs = samples(generate_latest(registry).decode())
    for (name, labels), count in theirs.items():
        if name.startswith("reference_") and not name.endswith("_created"):
            mine = name.replace("reference_", "votesvc_vote_duration_seconds_")
            assert ours[mine, labels] == pytest.approx(count), (name, labels)
    assert ours["votesvc_votes_total", (("code", "accepted"),)] == len(durations)
    assert ours["votesvc_votes_total", (("code", "already_voted"),)] == 1


def test_script_times_push_as_observe_would() -> None:
    stats, metrics = VoteStats(), Metrics()
    registry = CollectorRegistry()
    reference = Histogram(
        "reference", "same", ["script"], buckets=SCRIPT_BUCKETS, registry=registry
    )
    calls = [("cast_vote", 0.0003), ("cast_vote", 0.0005), ("cast_vote", 0.004)]
    calls += [("cast_vote", 2.0), ("ip_limit", 0.0007)]
    for name, seconds in calls:
        stats.script(name, seconds)
        reference.labels(name).observe(seconds)
    stats.push(metrics)
    stats.push(metrics)  # nothing new: nothing added
    ours = samples(generate_latest(metrics.registry).decode())
    theirs = samples(generate_latest(registry).decode())
    compared = 0
    for (name, labels), count in theirs.items():
        if name.startswith("reference_") and not name.endswith("_created"):
            mine = name.replace("reference_", "votesvc_redis_script_duration_seconds_")
            assert ours[mine, labels] == pytest.approx(count), (name, labels)
            compared += 1
    assert compared == 2 * (len(SCRIPT_BUCKETS) + 1 + 2)  # two scripts: buckets, count, sum


def test_a_dead_workers_live_gauges_are_dropped(tmp_path: Path) -> None:
    script = (
        "from prometheus_client import Gauge\n"
        "Gauge('votesvc_sse_streams', 'x', multiprocess_mode='livesum').set(7)\n"
        "Gauge('votesvc_build_info', 'x', multiprocess_mode='max').set(1)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True)
    registry = CollectorRegistry()
    collector = WorkerCollector(registry, tmp_path)
    assert collector.dead_workers()
    text = generate_latest(registry).decode()
    assert "votesvc_sse_streams" not in text  # the worker's live gauge went with it
    assert "votesvc_build_info 1.0" in text  # a max gauge stays
    assert not collector.dead_workers()


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: `make test` installs Debian's prometheus as root")
        pytest.skip("promtool is missing (Debian's prometheus package)")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow
def test_flush_on_a_metrics_port_in_use_stops_with_one_line(
    tmp_path: Path, own_redis: EmbeddedRedis
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
        env |= {
            "VOTESVC_DATA_DIR": str(tmp_path / "data"),
            "VOTESVC_REDIS_URL": own_redis.url,
            "VOTESVC_METRICS_PORT": str(port),
            "VOTESVC_SECRET": SECRET.decode(),
        }
        done = subprocess.run(
            [sys.executable, "-m", "votesvc", "flush"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"votesvc: cannot serve metrics on 127.0.0.1:{port}: Address already in use"
    )
    assert "Traceback" not in done.stderr


def test_serve_with_two_workers_and_a_flush_process_are_scraped(
    tmp_path: Path, serve: list[Serve]
) -> None:
    serve_metrics, flush_metrics = free_port(), free_port()
    run = Serve(
        tmp_path / "data",
        extra_env={
            "VOTESVC_METRICS_PORT": str(serve_metrics),
            "VOTESVC_FLUSH_IN_SERVE": "false",
            "VOTESVC_SECRET": SECRET.decode(),
        },
        args=["--workers", "2"],
    )
    serve.append(run)
    wait_until(lambda: "Uvicorn running" in run.output() or run.proc.poll() is not None)
    redis_url = "unix://" + str(tmp_path / "data" / "redis" / "redis.sock")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
    env |= {
        "VOTESVC_DATA_DIR": str(tmp_path / "data"),
        "VOTESVC_REDIS_URL": redis_url,
        "VOTESVC_METRICS_PORT": str(flush_metrics),
        "VOTESVC_SECRET": SECRET.decode(),
    }
    flusher = subprocess.Popen(
        [sys.executable, "-m", "votesvc", "flush"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(run.healthy, within=30)
        before = scrape(serve_metrics)
        assert value(before, "votesvc_build_info", version=_version()) == 1
        with httpx.Client(base_url=run.url, timeout=5) as client:
            for n in range(12):
                vote = client.post("/v1/votes", json={"nominee": "N07", "phone": phone(n)})
                assert vote.status_code == 201
            again = client.post("/v1/votes", json={"nominee": "N07", "phone": phone(0)})
            assert again.status_code == 409

        def counted() -> bool:
            text = scrape(serve_metrics)
            return (
                value(text, "votesvc_votes_total", code="accepted") == 12
                and value(text, "votesvc_votes_total", code="already_voted") == 1
                and value(text, "votesvc_vote_duration_seconds_count") == 13
                and value(text, "votesvc_ready") == 1
            )

        wait_until(counted, within=30)
        served = scrape(serve_metrics)
        assert value(served, "votesvc_vote_batch_size_count") >= 1
        assert value(served, "votesvc_redis_script_duration_seconds_count", script="cast_vote") >= 1
        assert value(served, "votesvc_redis_used_memory_bytes") > 0
        promtool_check(served)

        def flushed() -> bool:
            text = scrape(flush_metrics)
            return (
                value(text, "votesvc_flusher_votes_written_total") == 12
                and value(text, "votesvc_flusher_backlog_votes") == 0
                and value(text, "votesvc_flushers_alive") >= 1
            )

        wait_until(flushed, within=30)
        flush_text = scrape(flush_metrics)
        assert value(flush_text, "votesvc_flusher_lag_seconds") == 0
        promtool_check(flush_text)
        for text in (served, flush_text):
            assert "1390000" not in text  # no phone in any label or value
    finally:
        flusher.terminate()
        flusher.wait(timeout=20)
    assert run.stop() == 0
    assert not list((tmp_path / "data").glob("metrics-*"))  # serve cleans its directory


def _version() -> str:
    from votesvc import __version__

    return __version__
