"""Hearing the server's exit signal before the server acts on it.

On SIGTERM or SIGINT uvicorn stops accepting connections, then waits (up to
its graceful timeout) for every open response to finish, and only then runs
the lifespan shutdown. A response that never finishes on its own, such as a
Server-Sent Events stream, would hold the process up for that whole timeout.

:func:`on_exit_signal` chains a callback in front of the handler the server
has installed, so the application can end such responses as soon as the
signal arrives; the server's own handler still runs right after. It works in
``votesvc serve`` with one worker or many, since each uvicorn worker installs
its handlers in its main thread before it starts the lifespan; where it cannot
hook (not the main thread, or no Python handler to chain), it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["EXIT_SIGNALS", "on_exit_signal"]

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def on_exit_signal(callback: Callable[[], None]) -> Iterator[bool]:
    """Run ``callback`` in the current event loop when an exit signal arrives.

    Yields whether a handler was chained. Call it from a coroutine (the
    lifespan); the previous handlers are restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    loop = asyncio.get_running_loop()
    previous: dict[int, Callable[[int, FrameType | None], object]] = {}
    for exit_signal in EXIT_SIGNALS:
        installed = signal.getsignal(exit_signal)
        if callable(installed):  # not SIG_DFL or SIG_IGN: some server is listening
            previous[exit_signal] = installed

    def chained(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed already
            loop.call_soon_threadsafe(callback)
        previous[signum](signum, frame)

    for sig in previous:
        signal.signal(sig, chained)
    try:
        yield bool(previous)
    finally:
        for sig, original in previous.items():
            if signal.getsignal(sig) is chained:
                signal.signal(sig, original)
