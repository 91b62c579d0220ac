"""What a campaign must keep for its whole life: nominee codes, shards, the secret.

A phone's day record in Redis holds one character per nominee it voted for
today. If those codes followed the campaign file's ids, withdrawing N05
mid-campaign would hand N05's old code to N06, and a phone that voted for N06
in the morning could vote for it again. Two hosts with another shard count or
another secret would shard or hash one phone differently and multiply its
quota. So the first start of a campaign fixes all three, in the ledger
(``campaign_meta``, written by ``votesvc.ledger.setup``) and in a mirror in
Redis (``Keys.meta()``) that serving processes read:

- every later start uses the stored codes: a new nominee takes a code never
  given before, a removed one takes none of the others' (its own stays
  retired), and a start needing more codes than ``NOMINEE_CODES`` holds is
  refused;
- a start whose shard count or secret differs from the stored one is refused,
  naming which (the secret by a keyed fingerprint, never the secret itself).

The same module reads and writes the shards' **markers**, which say that Redis
holds the ledger's campaign: a Redis that lost its data (FLUSHALL, an old
snapshot, a new empty node) has none, and the vote script refuses votes on a
shard without one until ``votesvc restore`` rebuilds it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from votesvc.campaign import NOMINEE_CODES, Campaign
from votesvc.connection import RedisClient
from votesvc.errors import ConfigError
from votesvc.keys import Keys
from votesvc.settings import Settings

__all__ = [
    "CampaignMeta",
    "assign_codes",
    "campaign_from_mirror",
    "check",
    "data_intact",
    "delete_markers",
    "meta_for",
    "read_mirror",
    "secret_fingerprint",
    "write_markers",
    "write_mirror",
]


@dataclass(frozen=True, slots=True)
class CampaignMeta:
    codes: dict[str, str]  # nominee id -> code, every code ever given (retired ones too)
    shards: int
    secret_fingerprint: str

    def as_json(self) -> bytes:
        return orjson.dumps(self.codes, option=orjson.OPT_SORT_KEYS)


def secret_fingerprint(secret: bytes) -> str:
    """A keyed fingerprint of the secret: equal secrets, equal fingerprints; it reveals nothing."""
    return hmac.new(secret, b"votesvc secret fingerprint", hashlib.sha256).hexdigest()[:16]


def assign_codes(nominee_ids: Iterable[str], stored: Mapping[str, str]) -> dict[str, str]:
    """``stored`` plus a code never given before for each nominee it lacks (by sorted id)."""
    codes = dict(stored)
    used = set(codes.values())
    free = iter(code for code in NOMINEE_CODES if code not in used)
    for nominee_id in sorted(nominee_ids):
        if nominee_id not in codes:
            code = next(free, None)
            if code is None:
                raise ConfigError(
                    f"nominee {nominee_id} needs a code and all {len(NOMINEE_CODES)} have been "
                    "given in this campaign (withdrawn nominees keep theirs)"
                )
            codes[nominee_id] = code
    return codes


def meta_for(campaign: Campaign, settings: Settings, stored: CampaignMeta | None) -> CampaignMeta:
    """The campaign's meta for this start; ConfigError if it disagrees with ``stored``."""
    fingerprint = secret_fingerprint(settings.secret)
    if stored is not None:
        check(campaign, settings, stored)
    codes = assign_codes((n.id for n in campaign.nominees), stored.codes if stored else {})
    return CampaignMeta(codes, settings.shards, fingerprint)


def check(campaign: Campaign, settings: Settings, stored: CampaignMeta) -> None:
    """Refuse a start whose shards or secret differ from the campaign's, naming which."""
    if settings.shards != stored.shards:
        raise ConfigError(
            f"campaign {campaign.id} runs with VOTESVC_SHARDS={stored.shards}; this start has "
            f"{settings.shards}: the shard count is fixed for a campaign's life"
        )
    if secret_fingerprint(settings.secret) != stored.secret_fingerprint:
        raise ConfigError(
            f"campaign {campaign.id} runs with another VOTESVC_SECRET (fingerprint "
            f"{stored.secret_fingerprint}); every host must share one secret"
        )


async def read_mirror(client: RedisClient, keys: Keys) -> CampaignMeta | None:
    """The ledger's campaign meta as mirrored in Redis, or None if it is not there."""
    fields: Any = await client.hgetall(keys.meta())
    if not fields:
        return None
    return CampaignMeta(
        codes=orjson.loads(fields[b"codes"]),
        shards=int(fields[b"shards"]),
        secret_fingerprint=fields[b"secret_fingerprint"].decode(),
    )


async def campaign_from_mirror(
    client: RedisClient, keys: Keys, campaign: Campaign, settings: Settings
) -> Campaign | None:
    """The campaign with the codes of the Redis mirror (None: no mirror yet).

    ConfigError if this process's shards or secret differ from the campaign's.
    """
    meta = await read_mirror(client, keys)
    if meta is None:
        return None
    check(campaign, settings, meta)
    missing = sorted(n.id for n in campaign.nominees if n.id not in meta.codes)
    if missing:
        raise ConfigError(
            f"nominees {', '.join(missing)} have no code yet: start a process that opens the "
            "ledger with this campaign file first (serve with its flusher, or votesvc flush)"
        )
    return campaign.with_codes(meta.codes)


async def write_mirror(client: RedisClient, keys: Keys, meta: CampaignMeta) -> None:
    await client.hset(
        keys.meta(),
        mapping={
            "codes": meta.as_json(),
            "shards": meta.shards,
            "secret_fingerprint": meta.secret_fingerprint,
        },
    )


async def data_intact(client: RedisClient, keys: Keys) -> bool:
    """True if every shard's marker is there (one key at a time: each has its own slot)."""
    for marker in keys.markers():
        if not await client.exists(marker):
            return False
    return True


async def write_markers(client: RedisClient, keys: Keys) -> None:
    for marker in keys.markers():
        await client.set(marker, "1")


async def delete_markers(client: RedisClient, keys: Keys) -> None:
    for marker in keys.markers():
        await client.delete(marker)
