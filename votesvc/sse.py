"""``GET /v1/tally/stream``: the live tally pushed as Server-Sent Events.

Each event is unnamed (``EventSource.onmessage`` gets it) and carries the same
JSON as ``GET /v1/tally``: the current snapshot at once on connect, then the
newest one after every change, at most twice a second per stream; an idle
stream gets a ``: heartbeat`` comment every ``heartbeat`` seconds so proxies
keep it open.

Streams never read Redis. One fan-out task per process waits for the
:class:`~votesvc.tally.TallyBoard` to publish a different snapshot and wakes
every open stream, so a thousand streams cost Redis what one poller does: one
read per refresh interval.

Open streams are bounded (``VOTESVC_SSE_MAX``); past the bound, and once the
process is shutting down, a new stream gets ``503 unavailable``. A stream ends
when its client goes away or when :meth:`TallyStream.close` is called, on the
server's exit signal (:mod:`votesvc.shutdown` says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from votesvc.errors import http_error
from votesvc.responses import error_response
from votesvc.tally import Snapshot, TallyBoard

__all__ = ["TallyStream"]

log = logging.getLogger(__name__)

MIN_INTERVAL = 0.5  # seconds between two data events on one stream
RECONNECT_MS = 2000  # the "retry:" an EventSource waits before reconnecting
_BUSY_RETRY = 5  # Retry-After (seconds) when the stream bound is reached
_UNAVAILABLE_RETRY = 1  # Retry-After (seconds) while there is no snapshot yet
_HEARTBEAT = b": heartbeat\n\n"
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
]


class _Subscriber:
    """One open stream: woken on a change, on close, or when its client leaves."""

    __slots__ = ("gone", "wake")

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.gone = False


class TallyStream:
    """The stream endpoint and its subscribers, fed by one fan-out task."""

    def __init__(
        self,
        board: TallyBoard,
        *,
        max_streams: int,
        heartbeat: float,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self._board = board
        self._max = max_streams
        self._heartbeat = heartbeat
        self._min_interval = min_interval
        self._subscribers: set[_Subscriber] = set()
        self._closed = False
        self._framed: tuple[Snapshot | None, bytes] = (None, b"")

    @property
    def open_streams(self) -> int:
        return len(self._subscribers)

    @property
    def closed(self) -> bool:
        return self._closed

    async def run(self) -> None:
        """Wake every open stream whenever the board publishes a change (cancel to stop)."""
        while True:
            await self._board.next_change()
            self._wake_all()

    def close(self) -> None:
        """End every open stream now and refuse new ones: the server is shutting down."""
        if not self._closed:
            self._closed = True
            log.info("ending %d open tally stream(s)", len(self._subscribers))
        self._wake_all()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI endpoint: admit the stream (or refuse it) and serve it."""
        refusal = self._refusal()
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._serve(receive, send)

    def _wake_all(self) -> None:
        for subscriber in self._subscribers:
            subscriber.wake.set()

    def _refusal(self) -> Response | None:
        if self._closed:
            return error_response(
                http_error("unavailable", "The server is restarting.", retry_after=_BUSY_RETRY)
            )
        if len(self._subscribers) >= self._max:
            return error_response(
                http_error(
                    "unavailable",
                    "Too many open tally streams; poll GET /v1/tally instead.",
                    retry_after=_BUSY_RETRY,
                )
            )
        if self._board.snapshot is None:
            return error_response(http_error("unavailable", retry_after=_UNAVAILABLE_RETRY))
        return None

    def _frame(self, snapshot: Snapshot) -> bytes:
        # Every stream sends the same bytes for a snapshot: build them once.
        framed, frame = self._framed
        if framed is not snapshot:
            frame = b"data: " + snapshot.body + b"\n\n"
            self._framed = (snapshot, frame)
        return frame

    async def _serve(self, receive: Receive, send: Send) -> None:
        subscriber = _Subscriber()
        self._subscribers.add(subscriber)
        listener = asyncio.create_task(_until_disconnect(receive, subscriber))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await self._pump(subscriber, send)
            if not subscriber.gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._subscribers.discard(subscriber)
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _pump(self, subscriber: _Subscriber, send: Send) -> None:
        loop = asyncio.get_running_loop()
        prefix = b"retry: %d\n\n" % RECONNECT_MS
        sent_etag: str | None = None
        sent_at = -self._min_interval
        quiet_since = loop.time()
        while not (subscriber.gone or self._closed):
            # Clear before looking, so a change published meanwhile wakes the wait below.
            subscriber.wake.clear()
            now = loop.time()
            deadline = quiet_since + self._heartbeat
            snapshot = self._board.snapshot
            if snapshot is not None and snapshot.etag != sent_etag:
                due = sent_at + self._min_interval
                if now >= due:
                    body = prefix + self._frame(snapshot)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    prefix = b""
                    sent_etag, sent_at, quiet_since = snapshot.etag, now, now
                    continue
                deadline = min(deadline, due)
            elif now >= deadline:
                await send({"type": "http.response.body", "body": _HEARTBEAT, "more_body": True})
                quiet_since = now
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await subscriber.wake.wait()


async def _until_disconnect(receive: Receive, subscriber: _Subscriber) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    subscriber.gone = True
    subscriber.wake.set()
