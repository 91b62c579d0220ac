"""An app served over real HTTP: uvicorn on a free loopback port, in a thread.

Streams (Server-Sent Events) and browsers need a real socket; httpx's ASGI
transport collects a whole response before it returns one.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette

from tests.localhost import wait_until


class LiveServer:
    """``app`` served by uvicorn at :attr:`url` until :meth:`stop`."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say so,
        # and without it every response waits ~40 ms for a delayed ACK.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            lifespan="on",
            log_config=None,
            access_log=False,
            ws="none",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[self.sock])

    def start(self, within: float = 15.0) -> LiveServer:
        self.thread.start()

        def started() -> bool:
            assert self.thread.is_alive(), "the live server's thread ended at start-up"
            return bool(self.server.started)

        wait_until(started, within, "the live server started")
        return self

    def call(self, function: Callable[[], object]) -> None:
        """Run ``function`` in the server's event loop."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(function)

    def stop(self) -> None:
        if self.thread.is_alive():
            # In a thread no exit signal reaches the app: end its streams as the signal would.
            self.call(self.app.state.streams.close)
            self.server.should_exit = True
            self.thread.join(15)
        self.sock.close()
