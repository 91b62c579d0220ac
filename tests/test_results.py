# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""``GET /v1/results`` and ``/results`` as any process serves them: the ledger read until
the result is certified (a certification elsewhere shows within seconds), one ETag
for every process, and 503 while the ledger has never answered."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.routing import Route

from tests.ledger_support import cli
from tests.support import SECRET, campaign_toml, make_campaign, running_service, wait_for
from votesvc.hotpath import RawRoute
from votesvc.ledger.store import VoteRow, build_store
from votesvc.redis_server import EmbeddedRedis
from votesvc.results import REFRESH, Results
from votesvc.settings import Settings

CLOSES = "2026-06-30T20:00:00+08:00"
START = int(datetime.fromisoformat("2026-06-10T09:00:00+08:00").timestamp() * 1000)


async def test_a_certification_by_another_process_is_published_within_seconds(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    text = campaign_toml(closes_at=CLOSES, nominees=4, award_seats=2)
    (tmp_path / "campaign.toml").write_text(text)
    campaign = make_campaign(closes_at=CLOSES, nominees=4, award_seats=2)
    kwargs: dict[str, Any] = {"campaign": campaign, "campaign_path": tmp_path / "campaign.toml"}
    async with (
        running_service(redis_server.url, tmp_path, **kwargs) as one,
        running_service(redis_server.url, tmp_path, **kwargs) as two,
    ):
        first = await one.client.get("/v1/results")
        other = await two.client.get("/v1/results")
        assert first.json() == {"campaign": campaign.id, "certified": False}
        assert first.headers["etag"] == other.headers["etag"]  # the same from every process

        store = build_store(one.settings)
        await store.open()
        try:
            await store.insert_votes(
                [
                    VoteRow(
                        f"{n:032x}", campaign.id, f"N0{n % 3 + 1}", f"{n:064x}", "0" * 16, START + n
                    )
                    for n in range(7)
                ]
            )
        finally:
            await store.close()
        code, out, err = await asyncio.to_thread(cli, one.settings, "certify", "--by", "ops")
        assert code == 0, err

        async def published() -> bool:
            response = await two.client.get("/v1/results")
            return bool(response.json()["certified"])

        await wait_for(published, within=REFRESH * 5, interval=0.1)
        body = (await two.client.get("/v1/results")).json()
        assert [(w["place"], w["id"], w["votes"]) for w in body["winners"]] == [
            (1, "N01", 3),
            (2, "N02", 2),
        ]
        assert body["seats"] == 2
        assert (await one.client.get("/v1/results")).json() == body
        page = await two.client.get("/results")
        assert "“最受欢迎”奖获奖名单（共 2 位）" in page.text
        assert '<span class="votes">3 票</span>' in page.text
        assert out.splitlines()[-1].startswith("sha256 ")


async def test_without_a_ledger_the_results_answer_503(tmp_path: Path) -> None:
    nowhere = "sqlite:////proc/votesvc-no-ledger/ledger.sqlite3"  # cannot be created
    settings = Settings(data_dir=tmp_path, database_url=nowhere, secret=SECRET)
    results = Results(settings, make_campaign())
    app = Starlette(
        routes=[
            RawRoute("/v1/results", results.api, methods=["GET"]),
            Route("/results", results.page, methods=["GET"]),
        ]
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://votesvc") as client:
            response = await client.get("/v1/results")
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "unavailable"
            assert response.headers["retry-after"] == "5"
            page = await client.get("/results")
            assert page.status_code == 503
            assert "暂时无法显示" in page.text
    finally:
        await results.close()
