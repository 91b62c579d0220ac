"""Logging set-up for the CLI, and a throttle for messages that would flood.

While Redis is down every batch fails; an operator needs to hear it once in a
while with a count, not thousands of times a second.
"""

from __future__ import annotations

import logging
import logging.config
import time
from typing import Any

__all__ = ["ThrottledLog", "configure_logging", "logging_config"]

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def logging_config(level: str) -> dict[str, Any]:
    """A ``dictConfig`` for the CLI and every uvicorn worker: one line per event."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
        },
    }


def configure_logging(level: str) -> None:
    logging.config.dictConfig(logging_config(level))


class ThrottledLog:
    """Logs a message at most once per ``every`` seconds, counting the rest."""

    __slots__ = ("_every", "_last", "_logger", "_suppressed")

    def __init__(self, logger: logging.Logger, every: float) -> None:
        self._logger = logger
        self._every = every
        self._last = -every
        self._suppressed = 0

    def warn(self, message: str, *args: object) -> None:
        self._log(logging.WARNING, message, args)

    def error(self, message: str, *args: object) -> None:
        self._log(logging.ERROR, message, args)

    def _log(self, level: int, message: str, args: tuple[object, ...]) -> None:
        now = time.monotonic()
        if now - self._last < self._every:
            self._suppressed += 1
            return
        if self._suppressed:
            message += " (and %d more like it)"
            args = (*args, self._suppressed)
        self._logger.log(level, message, *args)
        self._last = now
        self._suppressed = 0
