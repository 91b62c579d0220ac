"""on_exit_signal: the app hears SIGTERM first, the server's own handler still runs."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from votesvc.shutdown import on_exit_signal


@pytest.fixture
def server_handler() -> Iterator[list[int]]:
    """Stands in for uvicorn's handler: records the signals it gets."""
    received: list[int] = []

    def handle_exit(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    original = signal.signal(signal.SIGTERM, handle_exit)
    yield received
    signal.signal(signal.SIGTERM, original)


async def test_callback_runs_in_the_loop_then_the_server_handler(
    server_handler: list[int],
) -> None:
    called = asyncio.Event()
    before = signal.getsignal(signal.SIGTERM)
    with on_exit_signal(called.set) as hooked:
        assert hooked
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(called.wait(), 2)
    assert server_handler == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before


async def test_default_disposition_is_left_alone() -> None:
    original = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with on_exit_signal(lambda: None):
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, original)


async def test_outside_the_main_thread_it_does_nothing() -> None:
    def hook() -> bool:
        async def inner() -> bool:
            with on_exit_signal(lambda: None) as hooked:
                return hooked

        return asyncio.run(inner())

    assert await asyncio.to_thread(hook) is False
