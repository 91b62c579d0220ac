"""What every ledger command runs on: its ledger checked, Redis, the store, a flusher.

Before anything else, :func:`check_ledger` names the ledger a command uses on
stderr (stdout stays the command's output) and, for every command but
``flush``, refuses when no ledger exists there. ``votesvc.cli`` runs it before
it builds the settings, as ``Settings.from_env`` creates a missing secret in
the data dir: a mistyped ``VOTESVC_DATA_DIR`` then creates nothing (no secret,
no embedded Redis, no empty ledger) instead of reporting an empty count.

:func:`run_with_tools` then opens what a command needs (the campaign, Redis,
the store, a flusher for catching up). Redis is reached through
``VOTESVC_REDIS_URL`` or, when unset, the embedded server of the data
directory, started for the command if no ``serve`` runs (and stopped after).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from votesvc.campaign import Campaign, load_campaign
from votesvc.connection import RedisClient
from votesvc.days import system_clock
from votesvc.errors import ConfigError
from votesvc.keys import Keys
from votesvc.ledger.backoff import REDIS_DOWN
from votesvc.ledger.flusher import Flusher
from votesvc.ledger.runner import build_flusher, flusher_client
from votesvc.ledger.store import (
    AuditEntry,
    Store,
    StoreUnavailable,
    ledger_exists,
    ledger_name,
)
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Database, Settings

__all__ = [
    "Body",
    "LedgerUse",
    "NoLedger",
    "Tools",
    "audit",
    "check_ledger",
    "run_with_tools",
    "with_redis",
]

LedgerUse = Literal["existing", "create"]  # reads the ledger there, or creates one if missing


class NoLedger(ConfigError):
    """No ledger where the settings point: exit status 2, nothing created."""


def check_ledger(use: LedgerUse, database: Database) -> int | None:
    """Name the ledger on stderr; for ``existing``, refuse (NoLedger) when there is none.

    Creates nothing: run it before the settings are built. Returns 1 when the
    database cannot be asked (else None: go on).
    """
    name = ledger_name(database)
    print(f"votesvc: ledger {name}", file=sys.stderr, flush=True)
    if use == "create":
        return None
    try:
        exists = asyncio.run(ledger_exists(database))
    except StoreUnavailable as exc:
        print(f"votesvc: the ledger database is unavailable: {exc}", file=sys.stderr)
        return 1
    if not exists:
        what = "file" if database.kind == "sqlite" else "schema_migrations table"
        raise NoLedger(
            f"no ledger at {name} (no such {what}; nothing was created): check "
            "VOTESVC_DATA_DIR and VOTESVC_DATABASE_URL (`votesvc serve` or `votesvc flush` "
            "creates a ledger)"
        )
    return None


@dataclass(slots=True)
class Tools:
    settings: Settings
    campaign: Campaign
    keys: Keys
    client: RedisClient
    store: Store
    flusher: Flusher


Body = Callable[[Tools], Awaitable[int]]


def with_redis(settings: Settings, run: Callable[[Settings], int]) -> int:
    """Run with Redis reachable: the configured URL, or the embedded server."""
    if settings.redis_url is not None:
        return run(settings)
    embedded = EmbeddedRedis(settings.data_dir, appendfsync=settings.redis_appendfsync)
    started = embedded.start()
    try:
        return run(settings.with_redis_url(embedded.url))
    finally:
        if started:
            embedded.stop()


async def audit(tools: Tools, actor: str, action: str, detail: dict[str, object]) -> None:
    """Write the audit row of an organiser's action (``detail``: what, with counts)."""
    entry = AuditEntry(
        at=int(system_clock() * 1000),
        actor=actor,
        action=action,
        detail=json.dumps(detail, sort_keys=True),
        reason="",
    )
    await tools.store.record_audit(tools.campaign.id, entry)


def run_with_tools(settings: Settings, body: Body) -> int:
    """Run ``body`` with the campaign, Redis, the opened store and a flusher."""
    campaign = load_campaign(settings.campaign_path)
    keys = Keys(campaign.id, settings.shards)

    async def main(settings: Settings) -> int:
        client = flusher_client(settings)
        flusher = build_flusher(settings, client, keys)
        store = flusher.store
        try:
            await store.open()
            return await body(Tools(settings, campaign, keys, client, store, flusher))
        except StoreUnavailable as exc:
            print(f"votesvc: the ledger database is unavailable: {exc}", file=sys.stderr)
            return 1
        except REDIS_DOWN as exc:
            print(f"votesvc: Redis is unavailable: {exc}", file=sys.stderr)
            return 1
        finally:
            await flusher.retire()
            await store.close()
            await client.aclose()

    return with_redis(settings, lambda s: asyncio.run(main(s)))
