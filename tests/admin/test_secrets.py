"""No raw phone number or password in any table of the ledger, or in any log line."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sqlite3
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.admin.support import console_service, organiser
from tests.admin.test_void_page import hidden_fields
from tests.ledger_support import cli, write_campaign
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

NUMBER = "13912345678"
SECRET_PASSWORD = "tiger-lily-moonbeam-42"
WRONG_PASSWORD = "tiger-lily-moonbeam-43"


async def every_row(settings: Settings) -> str:
    """Every row of every table of the ledger, as text."""
    dumped: list[str] = []
    path = settings.database.path
    if path is not None:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            for table in tables:
                dumped += [repr(row) for row in conn.execute(f"SELECT * FROM {table}")]
        assert {
            "votes",
            "audit_log",
            "admin_accounts",
            "admin_sessions",
            "admin_signin_failures",
        } <= set(tables)
        return "\n".join(dumped)
    conn = await asyncpg.connect(settings.database_url)
    try:
        tables = [
            r[0]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        for table in tables:
            dumped += [repr(tuple(row)) for row in await conn.fetch(f"SELECT * FROM {table}")]
    finally:
        await conn.close()
    assert "admin_accounts" in tables
    return "\n".join(dumped)


async def test_no_raw_phone_or_password_in_any_table_or_log(
    redis: aioredis.Redis,
    redis_server: EmbeddedRedis,
    tmp_path: Path,
    database_url: str | None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    campaign = write_campaign(tmp_path / "campaign.toml")
    async with console_service(
        redis_server.url,
        tmp_path,
        database_url,
        accounts={},
        campaign=campaign,
        campaign_path=tmp_path / "campaign.toml",
    ) as service:
        monkeypatch.setattr("sys.stdin", io.StringIO(SECRET_PASSWORD + "\n"))
        code, out, err = await asyncio.to_thread(
            cli, service.settings, "admin", "add-user", "ann", "--role", "operator"
        )
        assert code == 0, err
        assert (await service.vote("N01", NUMBER)).status_code == 201
        assert (await service.vote("N02", NUMBER)).status_code == 201
        async with organiser(service) as ann:
            assert (await ann.sign_in("ann", WRONG_PASSWORD)).status_code == 401
            assert (await ann.sign_in(SECRET_PASSWORD, "x" * 12)).status_code == 401  # swapped
            assert (await ann.sign_in("ann", SECRET_PASSWORD)).status_code == 303
            preview = await ann.post("/admin/void/preview", {"way": "phone", "phone": NUMBER})
            assert NUMBER not in preview.text
            done = await ann.client.post(
                "/admin/void/confirm", data={**hidden_fields(preview.text), "reason": "test"}
            )
            assert 'data-count="2"' in done.text
        logs = "\n".join(record.getMessage() for record in caplog.records) + out + err
        tables = await every_row(service.settings)
    assert "ann" in tables  # the dump holds the rows
    for secret in (NUMBER, NUMBER[-8:], SECRET_PASSWORD, WRONG_PASSWORD):
        assert secret not in tables, secret
        assert secret not in logs, secret
