"""A TCP proxy in front of a Redis socket that can hold Redis's replies back.

The fault it injects is the one a slow network or a slow disk gives: Redis has
run the command, and its reply reaches the client late. Requests pass at once;
while ``delay`` is set, the reply to a request that names ``slow_command`` waits
``delay`` seconds before it is forwarded (other replies, such as a new
connection's handshake, are not held: the client would time out connecting and
never send the command whose reply is the point).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import TracebackType


class DelayProxy:
    """Listens on a loopback port; forwards to the Redis unix socket ``target``."""

    def __init__(self, target: Path, slow_command: bytes = b"EVALSHA") -> None:
        self.target = target
        self.slow_command = slow_command
        self.delay = 0.0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def __aenter__(self) -> DelayProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        redis_in, redis_out = await asyncio.open_unix_connection(str(self.target))
        slow = [0]  # replies still to hold on this connection: one per slow command sent
        pumps = [
            asyncio.create_task(self._requests(client_in, redis_out, slow)),
            asyncio.create_task(self._replies(redis_in, client_out, slow)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
                self._tasks.discard(pump)
            for writer in (client_out, redis_out):
                writer.close()

    async def _requests(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, slow: list[int]
    ) -> None:
        # Counted, not matched chunk for chunk: the client's writes and Redis's
        # replies are cut into chunks independently of each other. A connection
        # runs one command at a time, so the replies that follow a slow command
        # are its own.
        with contextlib.suppress(ConnectionError):
            while chunk := await source.read(65536):
                if self.delay:
                    slow[0] += chunk.count(self.slow_command)
                sink.write(chunk)
                await sink.drain()

    async def _replies(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, slow: list[int]
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await source.read(65536):
                if slow[0] > 0:
                    slow[0] -= 1
                    await asyncio.sleep(self.delay)  # the injected fault itself
                sink.write(chunk)
                await sink.drain()
