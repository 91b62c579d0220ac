"""The Redis client the service opens (votesvc/connection.py), on a real Redis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import DataError

from votesvc.connection import connect
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

COMMANDS: list[tuple[object, ...]] = [
    # a vote batch's shape: keys, integers, packed strings, a non-ASCII argument
    ("EVALSHA", "a" * 40, 2, "votesvc:{c:s03}:day:20261121", "k2", 1795268333919, "N03 价", 0),
    ("SET", "k", b"\x00\xff\r\n", "PX", 10_000),
    ("HINCRBYFLOAT", "h", "f", 0.1),
    ("CONFIG GET", "maxmemory"),  # a two-word name
    (b"CONFIG GET", b"maxmemory"),
    ("SET", "k", memoryview(b"view")),  # a type hiredis does not pack
]


@pytest.mark.parametrize("args", COMMANDS)
async def test_commands_go_on_the_wire_as_redis_py_packs_them(
    redis_server: EmbeddedRedis, args: tuple[str | int | float | bytes, ...]
) -> None:
    client = connect(Settings(redis_url=redis_server.url))
    assert isinstance(client, Redis)
    try:
        connection = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            ours = b"".join(connection.pack_command(*args))
            theirs = b"".join(AbstractConnection.pack_command(connection, *args))
            assert ours == theirs
            assert type(connection).pack_command is not AbstractConnection.pack_command
        finally:
            await client.connection_pool.release(connection)
    finally:
        await client.aclose()


async def test_the_client_round_trips_values_and_refuses_bad_types(
    redis_server: EmbeddedRedis,
) -> None:
    client = connect(Settings(redis_url=redis_server.url))
    try:
        await client.set("votesvc-test:k", "价格 \x00")
        assert await client.get("votesvc-test:k") == "价格 \x00".encode()
        assert "maxmemory" in await client.config_get("maxmemory")
        with pytest.raises(DataError):
            await client.set("votesvc-test:k", True)
        await client.delete("votesvc-test:k")
    finally:
        await client.aclose()
