"""A campaign's start, on the ledger side: fix its lifelong settings, mark Redis.

Only a process that opens the ledger runs this (``serve`` with its flusher,
``votesvc flush``, ``votesvc restore``): the ledger is where the campaign's
codes, shard count and secret fingerprint are kept (``votesvc.meta`` says
why), and the only witness of whether Redis still holds the campaign.

- The stored meta is read (or made, on the campaign's first start), checked
  against this start's settings (a different shard count or secret stops it)
  and grown by the codes of new nominees, then mirrored into Redis.
- The shards' markers are written when the ledger holds no vote of the
  campaign (a new campaign: Redis cannot have lost anything yet) or by
  ``restore``. A Redis whose markers are gone while the ledger has votes has
  lost its data: this is logged, and the vote script refuses votes until
  ``votesvc restore`` has run.
"""

from __future__ import annotations

import asyncio
import logging

from votesvc.campaign import Campaign
from votesvc.connection import RedisClient, connect
from votesvc.keys import Keys
from votesvc.ledger.backoff import REDIS_DOWN, Backoff
from votesvc.ledger.store import Store, StoreUnavailable, build_store
from votesvc.logs import ThrottledLog
from votesvc.meta import (
    campaign_from_mirror,
    data_intact,
    meta_for,
    write_markers,
    write_mirror,
)
from votesvc.settings import Settings

__all__ = ["check_stored_meta", "set_up_before_serving", "settle_campaign", "settle_until"]

log = logging.getLogger(__name__)

_DOWN: tuple[type[Exception], ...] = (StoreUnavailable, *REDIS_DOWN)  # waited out, retried


async def settle_campaign(
    store: Store,
    client: RedisClient,
    keys: Keys,
    campaign: Campaign,
    settings: Settings,
    *,
    mark: bool = True,
) -> Campaign:
    """The campaign with its stored codes, its meta saved and mirrored.

    ``mark``: write the markers if the ledger holds no vote of the campaign
    (``restore`` passes False and writes them itself once it has rebuilt Redis).
    Raises ConfigError when this start disagrees with the stored meta, and
    StoreUnavailable or RedisError when either is down.
    """
    stored = await store.campaign_meta(campaign.id)
    meta = meta_for(campaign, settings, stored)
    if meta != stored:
        await store.save_campaign_meta(campaign.id, meta)
        if stored is not None:
            added = sorted(set(meta.codes) - set(stored.codes))
            log.info("campaign %s: new nominees %s have codes of their own", campaign.id, added)
    await write_mirror(client, keys, meta)
    if mark and not await data_intact(client, keys):
        if await store.count(campaign.id) == 0:
            await write_markers(client, keys)
        else:
            log.error(
                "Redis has lost campaign %s's data (its markers are gone while the ledger "
                "holds votes): votes are refused until `votesvc restore` has run",
                campaign.id,
            )
    return campaign.with_codes(meta.codes)


async def settle_until(
    store: Store,
    client: RedisClient,
    keys: Keys,
    campaign: Campaign,
    settings: Settings,
    stop: asyncio.Event,
) -> Campaign | None:
    """:func:`settle_campaign`, retried while Redis or the database is down (None: stopped)."""
    backoff = Backoff(1.0)
    down = ThrottledLog(log, every=10.0)
    while not stop.is_set():
        try:
            await store.open()
            return await settle_campaign(store, client, keys, campaign, settings)
        except _DOWN as exc:
            down.warn("campaign %s not set up yet (%s); retrying", campaign.id, exc)
            await backoff.wait(stop)
    return None


async def set_up_before_serving(settings: Settings, campaign: Campaign) -> None:
    """``votesvc serve``, before any worker starts: set the campaign up, or refuse it.

    With a flusher in ``serve`` this is the ledger's start (:func:`settle_campaign`);
    without, the Redis mirror is checked. ConfigError (one line) when this start
    disagrees with the campaign; Redis or the database down only delays it: the
    workers keep trying, and their votes wait (503).
    """
    client = connect(settings)
    keys = Keys(campaign.id, settings.shards)
    try:
        if settings.flush_in_serve:
            store = build_store(settings)
            try:
                await store.open()
                await settle_campaign(store, client, keys, campaign, settings)
            finally:
                await store.close()
        else:
            await campaign_from_mirror(client, keys, campaign, settings)
    except _DOWN as exc:
        log.warning("campaign %s not set up at start (%s); the workers retry", campaign.id, exc)
    finally:
        await client.aclose()


async def check_stored_meta(settings: Settings, campaign: Campaign) -> None:
    """Refuse (ConfigError) a start that disagrees with the ledger's campaign meta.

    Before anything is started (the embedded Redis, workers): the ledger alone
    answers. A ledger that cannot be read now defers the check to the set-up.
    """
    store = build_store(settings)
    try:
        await store.open()
        stored = await store.campaign_meta(campaign.id)
    except StoreUnavailable:
        return
    finally:
        await store.close()
    if stored is not None:
        meta_for(campaign, settings, stored)
