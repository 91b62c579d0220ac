"""For the processes the tests start on this host: a free loopback port, and a
bounded wait for a condition (a server up, a process gone) instead of a fixed sleep."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

__all__ = ["free_port", "wait_until"]


def free_port(below: int = 65536) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (and ``< below``)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port < below:
            return port


def wait_until(
    condition: Callable[[], object], within: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it is true; fail with ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    interval = 0.01
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s")
        time.sleep(interval)
        interval = min(interval * 2, 0.1)
