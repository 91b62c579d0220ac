"""Fixtures for the ledger: a session PostgreSQL cluster, one database per test.

``database_url`` is parametrized: every test that asks for it runs against
SQLite (``None``: the default file in the data dir) and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.pgcluster import PgCluster, postgres_available
from tests.support import SECRET
from votesvc.ledger.store import Store, build_store
from votesvc.settings import Settings

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    if not postgres_available():
        missing = "the PostgreSQL server binaries (initdb, pg_ctl, postgres) are not on PATH"
        if os.environ.get("CI"):  # CI's machine has them: their absence is a failure there
            pytest.fail(missing)
        pytest.skip(missing)
    cluster = PgCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


async def _create_database(cluster: PgCluster) -> str:
    name = f"ledger_{next(_databases)}"
    conn = await asyncpg.connect(cluster.url(), timeout=10)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return cluster.url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None for SQLite (the data dir's file), or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return asyncio.run(_create_database(cluster))


def ledger_settings(tmp_path: Path, database_url: str | None, **kwargs: object) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, secret=SECRET, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path, database_url: str | None) -> AsyncIterator[Store]:
    ledger = build_store(ledger_settings(tmp_path, database_url))
    await ledger.open()
    yield ledger
    await ledger.close()
