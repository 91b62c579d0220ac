"""``votesvc certify``: refused before close and with votes pending; after, the award,
the vote count and the export's SHA-256 in the audit log, a void refused, a later
export byte-identical with the certified digest."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from tests.ledger_fixtures import ledger_settings
from tests.ledger_support import cli, prefill_streams, write_campaign
from votesvc.campaign import Campaign
from votesvc.keys import Keys
from votesvc.ledger.award import TIE_RULE, Placing
from votesvc.ledger.certify import tie_places
from votesvc.ledger.store import VoteRow, build_store
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

OPENS = "2026-06-01T00:00:00+08:00"
CLOSED = "2026-06-30T20:00:00+08:00"  # before this test's runs (2026-11 onwards)
START = int(datetime.fromisoformat("2026-06-10T09:00:00+08:00").timestamp() * 1000)
# N01 5 votes, N02 and N03 3 each (N03 got there first), N04 1; N05.. none
PLAN = ["N01"] * 5 + ["N03"] * 3 + ["N02"] * 3 + ["N04"]


class Ledger:
    def __init__(self, tmp_path: Path, redis_url: str, database_url: str | None, **kw: Any):
        self.campaign: Campaign = write_campaign(
            tmp_path / "campaign.toml", opens_at=OPENS, nominees=6, award_seats=2, **kw
        )
        self.settings: Settings = ledger_settings(
            tmp_path, database_url, redis_url=redis_url, campaign_path=tmp_path / "campaign.toml"
        )
        self.rows = [
            VoteRow(f"{n:032x}", self.campaign.id, nominee, f"{n:064x}", "0" * 16, START + n * 1000)
            for n, nominee in enumerate(PLAN)
        ]

    def run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def call() -> Any:
            store = build_store(self.settings)
            await store.open()
            try:
                return await getattr(store, method)(*args, **kwargs)
            finally:
                await store.close()

        return asyncio.run(call())


async def test_certify_is_refused_while_voting_is_open(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    ledger = Ledger(tmp_path, redis_server.url, database_url)  # closes 2027-12-31
    await asyncio.to_thread(ledger.run, "insert_votes", ledger.rows)
    code, out, err = await asyncio.to_thread(cli, ledger.settings, "certify", "--by", "ann")
    assert (code, out) == (1, "")
    assert "votesvc certify: refused, not now: the voting window is still open" in err
    assert "2027-12-31 23:59:59+08:00" in err
    assert await asyncio.to_thread(ledger.run, "certification", ledger.campaign.id) is None
    assert await asyncio.to_thread(ledger.run, "audit_log", ledger.campaign.id) == []


async def test_certify_is_refused_while_votes_are_pending(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    ledger = Ledger(tmp_path, redis_server.url, None, closes_at=CLOSED)
    await asyncio.to_thread(ledger.run, "insert_votes", ledger.rows)
    await prefill_streams(
        redis, Keys(ledger.campaign.id, 16), 3, nominees=6, start_ms=START, first=1000
    )
    code, _, err = await asyncio.to_thread(cli, ledger.settings, "certify", "--by", "ann")
    assert code == 1
    assert "3 accepted votes are still pending in Redis" in err
    assert await asyncio.to_thread(ledger.run, "certification", ledger.campaign.id) is None


@pytest.fixture
def flushed(redis_server: EmbeddedRedis) -> None:
    with contextlib.closing(redis.Redis.from_url(redis_server.url)) as client:
        client.flushall()


@pytest.mark.usefixtures("flushed")
def test_certify_freezes_the_votes_and_names_the_export_s_digest(
    redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    ledger = Ledger(tmp_path, redis_server.url, database_url, closes_at=CLOSED)
    ledger.run("insert_votes", ledger.rows)
    code, _, err = cli(
        ledger.settings, "void", "--vote-id", ledger.rows[-1].vote_id, "--reason", "dup"
    )
    assert code == 0, err

    code, out, err = cli(ledger.settings, "certify", "--by", "zhang li")
    assert code == 0, err
    lines = out.splitlines()
    assert "result CERTIFIED by zhang li" in lines[0]
    assert "ledger: 12 votes, 1 of them void; 11 valid votes in the voting window" in out
    assert TIE_RULE in out
    digest = lines[-1].removeprefix("sha256 ")
    assert len(digest) == 64

    certification = ledger.run("certification", ledger.campaign.id)
    assert (certification.actor, certification.votes, certification.void) == ("zhang li", 12, 1)
    assert certification.export_sha256 == digest
    [row] = ledger.run("audit_log", ledger.campaign.id, action="certify")
    detail = json.loads(row.detail)
    assert (row.actor, detail["votes"], detail["void"], detail["sha256"]) == (
        "zhang li",
        12,
        1,
        digest,
    )
    assert (detail["label"], detail["seats"], detail["via"]) == (
        ledger.campaign.id,
        2,
        "command line",
    )
    assert [(r["id"], r["votes"], r["awarded"]) for r in detail["award"]] == [
        ("N01", 5, True),
        ("N03", 3, True),
        ("N02", 3, False),
        ("N04", 0, False),  # its one vote is void
        ("N05", 0, False),
        ("N06", 0, False),
    ]
    result = json.loads(certification.result)
    assert result == {
        "campaign": ledger.campaign.id,
        "certified": True,
        "certified_at": result["certified_at"],
        "seats": 2,
        "winners": [
            {"place": 1, "id": "N01", "name": "Nominee 1", "trade": "fitter", "votes": 5},
            {"place": 2, "id": "N03", "name": "Nominee 3", "trade": "welder", "votes": 3},
        ],
        "tie_rule": TIE_RULE,
    }
    assert result["certified_at"].endswith("+08:00")

    # The export under the default label is the certified one, byte for byte, every time.
    for name in ("first.csv", "second.csv"):
        code, _, err = cli(ledger.settings, "export", "--out", str(tmp_path / name))
        assert code == 0, err
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest
    assert (tmp_path / "first.csv").read_bytes() == (tmp_path / "second.csv").read_bytes()

    code, out, err = cli(
        ledger.settings, "void", "--vote-id", ledger.rows[0].vote_id, "--reason", "late"
    )
    assert (code, out) == (1, "")
    assert "refused, the result was certified at" in err
    assert ledger.run("count", ledger.campaign.id, void=True) == 1  # nothing changed
    code, _, err = cli(ledger.settings, "certify", "--by", "someone else")
    assert code == 1
    assert "refused, the result was certified already" in err
    assert f"by zhang li (export sha256 {digest})" in err
    assert [e.action for e in ledger.run("audit_log", ledger.campaign.id)] == [
        "void",
        "certify",
        "export",
        "export",
    ]


def placing(place: int, votes: int, reached_at: int | None) -> Placing:
    from tests.support import make_campaign

    nominee = make_campaign().nominees[place - 1]
    return Placing(place, nominee, votes, reached_at, place <= 2)


def test_a_place_is_shared_only_where_the_tie_rule_did_not_separate() -> None:
    placings = [
        placing(1, 9, 50),
        placing(2, 7, 10),  # reached 7 first: ahead
        placing(3, 7, 20),
        placing(4, 5, 30),
        placing(5, 5, 30),  # the same instant: only the id orders them
        placing(6, 0, None),
        placing(7, 0, None),
    ]
    assert tie_places(placings) == [1, 2, 3, 4, 4, 6, 6]
