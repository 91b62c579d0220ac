# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""总览: the live race with the award line, the ledger's backlog, health, today's checks."""

from __future__ import annotations

import re
from pathlib import Path

import redis.asyncio as aioredis

from tests.admin.support import console_service, organiser
from tests.support import make_campaign
from votesvc.days import campaign_day
from votesvc.keys import Keys
from votesvc.ledger.store import VoteRow, build_store
from votesvc.redis_server import EmbeddedRedis


def card(page: str, key: str) -> str:
    found = re.search(
        rf'data-key="{key}"><span class="label">[^<]*</span>'
        r'<span class="value[^"]*">([^<]*)</span>',
        page,
    )
    assert found is not None, key
    return found[1]


async def test_the_overview_shows_the_race_the_backlog_and_todays_checks(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(award_seats=2, nominees=4, verification={"methods": ["sms"]})
    async with (
        console_service(redis_server.url, tmp_path, campaign=campaign, sms_sender="log") as service,
        organiser(service) as ann,
    ):
        keys = Keys(campaign.id, service.settings.shards)
        day = campaign_day(service.clock(), campaign.timezone)
        await redis.hset(keys.otp_stats(day.label), mapping={"sent": 1234, "verified": 1200})
        today = int(day.start * 1000) + 1000
        rows = [
            VoteRow(f"{n:032x}", campaign.id, "N01", f"{n % 2:064x}", "0" * 16, today + n)
            for n in range(3)
        ]
        store = build_store(service.settings)
        await store.open()
        try:
            await store.insert_votes(rows)
        finally:
            await store.close()
        for n, nominee in enumerate(["N03", "N03", "N02", "N01"]):  # live: N02 and N01 tie
            await redis.hincrby(keys.tally(n % keys.shards), nominee, 1)
        assert (await ann.sign_in()).status_code == 303
        page = (await ann.client.get("/admin/overview")).text
        assert card(page, "total") == "4"
        assert card(page, "redis") == "正常"
        assert card(page, "ledger") == "正常"
        assert "已入账 3 张，其中已作废 0 张" in page
        assert card(page, "backlog") == "0 张"
        assert card(page, "otp-sent") == "1,234"
        assert card(page, "otp-verified") == "1,200"
        assert card(page, "voters") == "2"
        assert "（北京时间）" in page
        order = re.findall(r'<tr class="[^"]*" data-id="(\w+)" data-votes="(\d+)">', page)
        assert order == [("N03", "2"), ("N01", "1"), ("N02", "1"), ("N04", "0")]
        assert page.index('data-id="N01"') < page.index('id="cut"') < page.index('data-id="N02"')
        assert "并列第2名" in page
        assert "并列在获奖线上" in page

        await redis.delete(*keys.markers())  # Redis lost its data: the page says what to do
        lost = (await ann.client.get("/admin/overview")).text
        assert "votesvc restore" in card(lost, "redis")
