"""The hot endpoints, served as raw ASGI ahead of Starlette's middleware.

Votes, the tally and ``/healthz`` take most of the traffic. Going through
Starlette's error and exception middleware, its router and a ``Request`` /
``Response`` pair per request cost about as much CPU as the vote's own work, so
:class:`VoteApp` serves them straight from a ``(method, path)`` table. Their
handlers are *reply producers*: ``async (scope, receive) -> Reply | None``,
computing the whole reply before anything is sent, so an unexpected error
still becomes the JSON ``500`` of every other endpoint (with the traceback in
the log, never in the reply). ``None`` means the client went away.

Everything else (other methods on these paths, every other path) goes through
Starlette as before. When user middleware is configured (CORS), nothing is
served raw, so the middleware sees every request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from votesvc.errors import VoteError, error_body, http_error

__all__ = ["Headers", "RawRoute", "Reply", "VoteApp", "error_reply", "json_reply"]

log = logging.getLogger(__name__)

Headers: TypeAlias = list[tuple[bytes, bytes]]
Reply: TypeAlias = tuple[int, Headers, bytes]
"""(status, headers, body): what a hot handler answers."""

Producer: TypeAlias = Callable[[Scope, Receive], Awaitable[Reply | None]]

_JSON = b"application/json"
_errors: dict[tuple[str, str], Reply] = {}


def json_reply(body: bytes, status: int = 200, extra: Headers | None = None) -> Reply:
    headers = [(b"content-type", _JSON), (b"content-length", b"%d" % len(body))]
    if extra:
        headers += extra
    return status, headers, body


def error_reply(error: VoteError) -> Reply:
    """The JSON error body every endpoint uses; replies with no ``Retry-After`` are reused."""
    extra: Headers = []
    if error.headers:
        extra += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    if error.retry_after is not None:
        extra.append((b"retry-after", b"%d" % error.retry_after))
        return json_reply(error_body(error), error.status, extra)
    key = (error.code, error.message)
    reply = _errors.get(key)
    if reply is None or error.details:
        if len(_errors) > 256:  # messages are a few fixed texts; bound it all the same
            _errors.clear()
        reply = json_reply(error_body(error), error.status, extra)
        if not error.details:
            _errors[key] = reply
    return reply


_INTERNAL = error_reply(http_error("internal_error"))


async def _answer(producer: Producer, scope: Scope, receive: Receive, send: Send) -> None:
    try:
        reply = await producer(scope, receive)
    except Exception:
        log.exception("%s %s failed", scope["method"], scope["path"])
        reply = _INTERNAL
    if reply is None:  # the client disconnected
        return
    status, headers, body = reply
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Raw:
    """A reply producer as an ASGI app, for the requests that reach it through Starlette."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_copy(message: Any) -> None:
            # middleware on this path may edit the headers: never the shared lists
            if "headers" in message:
                message["headers"] = list(message["headers"])
            await send(message)

        await _answer(self.producer, scope, receive, send_copy)


class RawRoute(Route):
    """A Starlette route whose endpoint is a reply producer; :class:`VoteApp` serves it raw."""

    def __init__(self, path: str, producer: Producer, *, methods: Sequence[str]) -> None:
        super().__init__(path, _Raw(producer), methods=methods)
        self.producer = producer


class VoteApp(Starlette):
    """Starlette, with the :class:`RawRoute` endpoints served before its middleware."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hot: dict[tuple[str, str], Producer] = {}
        if not self.user_middleware:
            for route in self.routes:
                if isinstance(route, RawRoute):
                    for method in route.methods or ():
                        if method != "HEAD":
                            self.hot[method, route.path] = route.producer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            producer = self.hot.get((scope["method"], scope["path"]))
            if producer is not None:
                await _answer(producer, scope, receive, send)
                return
        await super().__call__(scope, receive, send)
