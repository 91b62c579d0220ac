"""Prometheus metrics: what ops watch on a campaign night.

Metrics exist only when ``VOTESVC_METRICS_PORT`` is set; the listener binds
``VOTESVC_METRICS_HOST`` (127.0.0.1 by default), never the API's port. ``serve``
always runs prometheus-client's multiprocess mode: it creates a fresh directory
(:func:`enable_multiprocess`), every worker writes its values there, and the
listener in ``serve``'s own process merges them (:class:`WorkerCollector`),
dropping the live gauges of workers that died. ``votesvc flush`` is one process
and serves its own registry.

The vote path pays for counting a vote a dict update, a bisect and an
addition (:class:`VoteStats`); the totals reach the shared counters once a
second, since a prometheus-client update in multiprocess mode costs about 5 us
a vote (BENCHMARKS.md). No phone, IP or vote id is ever a label.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path
from threading import Thread
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from votesvc import __version__
from votesvc.errors import ConfigError
from votesvc.processes import pid_alive

__all__ = [
    "Metrics",
    "VoteStats",
    "WorkerCollector",
    "enable_multiprocess",
    "multiprocess_dir",
    "remove_multiprocess_dir",
    "serve_metrics",
]

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
VOTE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
SCRIPT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


class Metrics:
    """Every metric votesvc exports, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.votes = Counter(
            "votesvc_votes", "Vote requests by outcome code", ["code"], registry=registry
        )
        self.vote_seconds = Histogram(
            "votesvc_vote_duration_seconds",
            "Time to answer a vote request",
            buckets=VOTE_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "votesvc_vote_batch_size",
            "Votes per vote-script call",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.script_seconds = Histogram(
            "votesvc_redis_script_duration_seconds",
            "Redis Lua script calls, by script",
            ["script"],
            buckets=SCRIPT_BUCKETS,
            registry=registry,
        )
        self.script_errors = Counter(
            "votesvc_redis_script_errors",
            "Redis Lua script calls that failed, by script",
            ["script"],
            registry=registry,
        )
        self.redis_used_memory = Gauge(
            "votesvc_redis_used_memory_bytes",
            "Redis used_memory (a cluster: the masters' sum)",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.redis_maxmemory = Gauge(
            "votesvc_redis_maxmemory_bytes",
            "Redis maxmemory (0: no limit)",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.ready = Gauge(
            "votesvc_ready",
            "1 while the process takes votes (as /readyz), else 0",
            multiprocess_mode="livemin",
            registry=registry,
        )
        self.tally_age = Gauge(
            "votesvc_tally_snapshot_age_seconds",
            "Age of the tally snapshot served",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.sse_streams = Gauge(
            "votesvc_sse_streams",
            "Open /v1/tally/stream connections",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.flushed = Counter(
            "votesvc_flusher_votes_written",
            "Votes the flusher wrote into the ledger",
            registry=registry,
        )
        self.flush_errors = Counter(
            "votesvc_flusher_write_errors",
            "Ledger writes that failed (the votes stay in Redis and are retried)",
            registry=registry,
        )
        self.backlog = Gauge(
            "votesvc_flusher_backlog_votes",
            "Accepted votes not yet in the ledger: pending plus unread stream entries",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.lag = Gauge(
            "votesvc_flusher_lag_seconds",
            "Age of the oldest vote not yet in the ledger (0: none)",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.flushers_alive = Gauge(
            "votesvc_flushers_alive",
            "Flushers that sent a heartbeat recently",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.otp_sends = Counter(
            "votesvc_otp_sends",
            "POST /v1/otp replies by outcome (sent or the error code)",
            ["outcome"],
            registry=registry,
        )
        self.otp_verifies = Counter(
            "votesvc_otp_verifies",
            "POST /v1/otp/verify replies by outcome (verified or the error code)",
            ["outcome"],
            registry=registry,
        )
        self.admin_signins = Counter(
            "votesvc_admin_signins",
            "Sign-ins to the organisers' console by outcome",
            ["outcome"],
            registry=registry,
        )
        self.votes_voided = Counter(
            "votesvc_votes_voided",
            "Votes voided from the organisers' console",
            registry=registry,
        )
        build = Gauge(
            "votesvc_build_info",
            "votesvc's version",
            ["version"],
            multiprocess_mode="max",
            registry=registry,
        )
        build.labels(__version__).set(1)


class VoteStats:
    """Per-process vote counts and latencies, pushed into :class:`Metrics` in bulk.

    An update of a shared (multiprocess) metric costs microseconds (a labelled
    histogram observe about 6); these tallies cost a fraction of one, and the
    push adds them once a second, one update per bucket.
    """

    __slots__ = ("_batches", "_bounds", "_buckets", "_codes", "_script_bounds", "_scripts", "_sum")

    def __init__(self) -> None:
        self._bounds = (*VOTE_BUCKETS, float("inf"))
        self._codes: dict[str, int] = {}
        self._buckets = [0] * len(self._bounds)
        self._sum = 0.0
        self._batches: list[int] = []
        self._script_bounds = (*SCRIPT_BUCKETS, float("inf"))
        self._scripts: dict[str, tuple[list[int], list[float]]] = {}  # name -> buckets, [sum]

    def record(self, code: str, seconds: float) -> None:
        """One vote request answered with ``code`` after ``seconds``."""
        self._codes[code] = self._codes.get(code, 0) + 1
        # Histogram.observe's bucket: the first upper bound >= the value.
        self._buckets[bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    def batch(self, size: int) -> None:
        self._batches.append(size)

    def script(self, name: str, seconds: float) -> None:
        """One call of the Lua script ``name`` that took ``seconds``."""
        tally = self._scripts.get(name)
        if tally is None:
            tally = self._scripts[name] = ([0] * len(self._script_bounds), [0.0])
        tally[0][bisect_left(self._script_bounds, seconds)] += 1
        tally[1][0] += seconds

    def push(self, metrics: Metrics) -> None:
        """Add what was recorded since the last push to the shared metrics."""
        codes, self._codes = self._codes, {}
        for code, count in codes.items():
            metrics.votes.labels(code).inc(count)
        buckets, self._buckets = self._buckets, [0] * len(self._bounds)
        _add_observations(metrics.vote_seconds, buckets, self._sum)
        self._sum = 0.0
        batches, self._batches = self._batches, []
        for size in batches:
            metrics.batch_size.observe(size)
        scripts, self._scripts = self._scripts, {}
        for name, (counts, total) in scripts.items():
            _add_observations(metrics.script_seconds.labels(name), counts, total[0])


def _add_observations(histogram: Any, buckets: list[int], total: float) -> None:
    """What observe() would have added for values counted into ``buckets`` (summing
    to ``total``): Histogram has no bulk observe, so one update per bucket."""
    if not any(buckets):
        return
    for index, count in enumerate(buckets):
        if count:
            histogram._buckets[index].inc(count)
    histogram._sum.inc(total)


def enable_multiprocess(data_dir: Path) -> Path:
    """Make this process and its children write metrics to a fresh directory.

    Must run before any metric is created. Returns the directory; the caller
    removes it (:func:`remove_multiprocess_dir`) when it exits.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="metrics-", dir=data_dir))
    os.environ[_MULTIPROC_ENV] = str(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return directory


def remove_multiprocess_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    os.environ.pop(_MULTIPROC_ENV, None)


def multiprocess_dir() -> Path | None:
    """The directory workers write to, when this process runs in multiprocess mode."""
    path = os.environ.get(_MULTIPROC_ENV)
    return Path(path) if path else None


class WorkerCollector(MultiProcessCollector):
    """The workers' merged metrics; a dead worker's live gauges are dropped first."""

    def __init__(self, registry: CollectorRegistry, path: Path) -> None:
        self.directory = path
        super().__init__(registry, str(path))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Any]:
        for pid in self.dead_workers():
            mark_process_dead(pid, str(self.directory))  # type: ignore[no-untyped-call]
        collected: Iterable[Any] = super().collect()  # type: ignore[no-untyped-call]
        return collected

    def dead_workers(self) -> set[int]:
        pids = set()
        for entry in self.directory.iterdir():
            match = _LIVE_FILE.fullmatch(entry.name)
            if match and not pid_alive(int(match[1])):
                pids.add(int(match[1]))
        return pids


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Thread:
    """Serve ``registry`` at ``http://host:port/metrics`` from a daemon thread.

    A port in use (or a host not of this machine) stops the process with one line.
    """
    try:
        _server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from exc
    return thread
