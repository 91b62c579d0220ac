# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""认证结果: refused before close, then certified from the console; /results and
GET /v1/results publish it at once, a void answers 409, the export matches."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import redis.asyncio as aioredis

from tests.admin.support import code_of, console_service, organiser
from tests.support import SECRET
from votesvc.campaign import Campaign, demo_campaign_text, parse_campaign
from votesvc.ledger.award import TIE_RULE, TIE_RULE_ZH
from votesvc.ledger.export import Refs, export_digest
from votesvc.ledger.store import VoteRow, build_store
from votesvc.redis_server import EmbeddedRedis

CLOSES = "2026-06-30T20:00:00+08:00"
START = int(datetime.fromisoformat("2026-06-10T09:00:00+08:00").timestamp() * 1000)
SEATS = 3
# N01 4, N02 and N03 3 each (N03 first: ahead of N02), N04 2, N05 1
PLAN = ["N01"] * 4 + ["N03"] * 3 + ["N02"] * 3 + ["N04"] * 2 + ["N05"]


def closing_campaign() -> Campaign:
    text = demo_campaign_text()
    text = text.replace('closes_at = "2027-12-31T23:59:59+08:00"', f'closes_at = "{CLOSES}"')
    text = text.replace("[rules]\n", f"[rules]\naward_seats = {SEATS}\n", 1)
    campaign = parse_campaign(text, source="demo, closing")
    assert campaign.closes_at == datetime.fromisoformat(CLOSES)
    return campaign


def rows(campaign: Campaign) -> list[VoteRow]:
    return [
        VoteRow(f"{n:032x}", campaign.id, nominee, f"{n:064x}", "0" * 16, START + n * 1000)
        for n, nominee in enumerate(PLAN)
    ]


def winner(campaign: Campaign, place: int, nominee_id: str, votes: int) -> dict[str, object]:
    nominee = campaign.nominee(nominee_id)
    assert nominee is not None
    return {
        "place": place,
        "id": nominee_id,
        "name": nominee.name,
        "trade": nominee.trade,
        "votes": votes,
    }


async def test_certify_from_the_console_publishes_and_freezes(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    campaign = closing_campaign()
    async with (
        console_service(redis_server.url, tmp_path, database_url, campaign=campaign) as service,
        organiser(service) as ann,
    ):
        store = build_store(service.settings)
        await store.open()
        try:
            await store.insert_votes(rows(campaign))
            assert (await ann.sign_in()).status_code == 303

            # Before close: refused, with the reason.
            page = await ann.client.get("/admin/certify")
            assert (page.status_code, code_of(page.text)) == (200, "not_ready")
            assert "现在还不能认证结果" in page.text
            assert "投票还在进行（2026-06-30 20:00:00（北京时间）截止）" in page.text
            assert 'action="/admin/certify"' not in page.text
            refused = await ann.post("/admin/certify", {"confirm": "yes"})
            assert (refused.status_code, code_of(refused.text)) == (409, "not_ready")
            assert await store.certification(campaign.id) is None

            before = await service.client.get("/v1/results")
            assert before.status_code == 200
            assert before.json() == {"campaign": campaign.id, "certified": False}
            assert before.headers["cache-control"] == "public, max-age=5"
            etag = before.headers["etag"]
            assert re.fullmatch(r'W/"[0-9a-f]{20}"', etag)
            again = await service.client.get("/v1/results", headers={"If-None-Match": etag})
            assert again.status_code == 304
            pending = await service.client.get("/results")
            assert pending.status_code == 200
            assert pending.headers["content-type"] == "text/html; charset=utf-8"
            assert pending.headers["cache-control"] == "no-cache"
            assert "结果尚未公布" in pending.text
            assert 'data-certified="false"' in pending.text

            # After close.
            service.clock.now = datetime.fromisoformat(CLOSES).timestamp() + 60
            assert (await ann.sign_in()).status_code == 303  # the session outlived 12 hours
            form = await ann.client.get("/admin/certify")
            assert (form.status_code, code_of(form.text)) == (200, None)
            assert re.findall(r'<tr data-id="(\w+)" data-place="(\d+)">', form.text) == [
                ("N01", "1"),
                ("N03", "2"),
                ("N02", "3"),
            ]
            assert "不能再作废任何选票" in form.text
            unchecked = await ann.post("/admin/certify", {})
            assert (unchecked.status_code, code_of(unchecked.text)) == (400, "invalid_form")
            assert await store.certification(campaign.id) is None

            done = await ann.post("/admin/certify", {"confirm": "yes"})
            assert done.status_code == 200, done.text
            assert 'data-code="certified"' in done.text
            assert "结果已认证并公布" in done.text
            certification = await store.certification(campaign.id)
            assert certification is not None
            assert (certification.actor, certification.votes, certification.void) == (
                "ann",
                len(PLAN),
                0,
            )
            digest = await export_digest(store, campaign, Refs(SECRET, campaign.id))
            assert certification.export_sha256 == digest.sha256
            assert f'<code id="sha256">{digest.sha256}</code>' in done.text

            # Published at once, by this process.
            published = await service.client.get("/v1/results")
            body = published.json()
            assert body == {
                "campaign": campaign.id,
                "certified": True,
                "certified_at": "2026-06-30T20:01:00.000+08:00",
                "seats": SEATS,
                "winners": [
                    winner(campaign, 1, "N01", 4),
                    winner(campaign, 2, "N03", 3),
                    winner(campaign, 3, "N02", 3),
                ],
                "tie_rule": TIE_RULE,
            }
            assert published.headers["etag"] != etag
            page = await service.client.get("/results")
            assert 'data-certified="true"' in page.text
            assert "本结果已于" in page.text
            assert "2026-06-30 20:01:00（北京时间）" in page.text
            assert re.findall(r'<li data-id="(\w+)" data-place="(\d+)">', page.text) == [
                ("N01", "1"),
                ("N03", "2"),
                ("N02", "3"),
            ]
            assert "王建国" in page.text
            assert TIE_RULE_ZH in page.text
            cached = await service.client.get(
                "/results", headers={"If-None-Match": page.headers["etag"]}
            )
            assert cached.status_code == 304

            # Frozen: a void is refused, the pages say so.
            void = await ann.post("/admin/void/preview", {"way": "nominee", "nominee": "N01"})
            assert (void.status_code, code_of(void.text)) == (409, "result_certified")
            assert "不能再作废" in void.text
            confirm = await ann.post(
                "/admin/void/confirm",
                {"way": "nominee", "nominee": "N01", "frozen": "0" * 64, "reason": "x"},
            )
            assert (confirm.status_code, code_of(confirm.text)) == (409, "result_certified")
            form = await ann.client.get("/admin/void")
            assert code_of(form.text) == "result_certified"
            assert 'action="/admin/void/preview"' not in form.text
            assert await store.count(campaign.id, void=True) == 0

            twice = await ann.post("/admin/certify", {"confirm": "yes"})
            assert twice.status_code == 409
            assert "评选结果已于 2026-06-30 20:01:00（北京时间） 认证并公布" in twice.text
            [entry] = await store.audit_log(campaign.id, action="certify")
            detail = json.loads(entry.detail)
            assert (entry.actor, detail["sha256"], detail["via"]) == (
                "ann",
                digest.sha256,
                "console",
            )
            audit = await ann.client.get("/admin/audit?action=certify")
            assert f"SHA-256 {digest.sha256}" in audit.text
            assert "第1名 王建国（N01）4 票，获奖" in audit.text
        finally:
            await store.close()
