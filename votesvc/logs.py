"""Logging set-up for the CLI, and a throttle for messages that would flood.

Text lines by default; ``VOTESVC_LOG_FORMAT=json`` gives one JSON object per
line (python-json-logger, encoded by orjson) for votesvc's and uvicorn's
loggers, with the fields an operator filters on: ``campaign``, ``worker``, and
``outcome`` or ``duration`` where a call passes them.

While Redis is down every batch fails; an operator needs to hear it once in a
while with a count, not thousands of times a second.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import logging.config
import os
import time
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from votesvc.keyring import derive_key

__all__ = [
    "AccessFilter",
    "ContextFilter",
    "JsonFormatter",
    "ThrottledLog",
    "configure_logging",
    "logging_config",
]

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# JSON lines: these fields, renamed, then any ``extra`` a call passes (outcome, duration...).
_JSON_FIELDS = ["asctime", "levelname", "name", "message", "campaign", "worker"]
_JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
_RESERVED = [*RESERVED_ATTRS, "color_message"]  # uvicorn's coloured copy of the message


class ContextFilter(logging.Filter):
    """Adds ``campaign`` and ``worker`` (the process id) to every record."""

    def __init__(self, campaign: str | None = None) -> None:
        super().__init__()
        self.campaign = campaign

    def filter(self, record: logging.LogRecord) -> bool:
        record.campaign = self.campaign
        record.worker = os.getpid()
        return True


class AccessFilter(logging.Filter):
    """uvicorn's access log with the client's address as a keyed hash, never the IP."""

    def __init__(self, secret: bytes = b"") -> None:
        super().__init__()
        self.key = derive_key(secret, "access-log")

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args and isinstance(args[0], str):
            host = args[0].rsplit(":", 1)[0]
            digest = hmac.new(self.key, host.encode(), hashlib.sha256).hexdigest()[:16]
            record.args = (f"client-{digest}", *args[1:])
        return True


class JsonFormatter(OrjsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, context."""

    def __init__(self) -> None:
        super().__init__(
            _JSON_FIELDS,
            rename_fields=_JSON_NAMES,
            reserved_attrs=_RESERVED,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds")


def logging_config(
    level: str, log_format: str = "text", *, campaign: str | None = None, secret: bytes = b""
) -> dict[str, Any]:
    """A ``dictConfig`` for the CLI and every uvicorn worker: one line per event.

    ``log_format`` "json": one JSON object per line (``VOTESVC_LOG_FORMAT``), with
    the campaign and the worker's process id. uvicorn's access log (opt-in)
    shows a keyed hash of the client's address in either format.
    """
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json" else {"format": FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": ContextFilter, "campaign": campaign},
            "access": {"()": AccessFilter, "secret": secret},
        },
        "formatters": {"main": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True, "filters": ["access"]},
        },
    }


def configure_logging(level: str, log_format: str = "text") -> None:
    logging.config.dictConfig(logging_config(level, log_format))


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
