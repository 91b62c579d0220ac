"""可疑活动: a burst planted through the vote path shows under its signal, on the page
and in ``votesvc suspects``; its preview selects exactly its votes; voided, it is gone.
No table holds a raw IP or prefix."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from tests.admin.support import code_of, console_service, organiser
from tests.admin.test_void_page import count_of, hidden_fields, open_ledger
from tests.ledger_support import cli
from tests.support import SECRET, Service, campaign_toml, phone, wait_for
from votesvc.campaign import parse_campaign
from votesvc.ledger.export import Refs
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

THRESHOLD = 20
BURST = 25
# The burst comes from one network, from addresses of its own; the rest from elsewhere.
BURST_NET = "203.0.113"
OTHERS = ("198.51.100.7", "192.0.2.44", "100.64.1.9")


def preview_forms(page: str) -> list[dict[str, str]]:
    """The fields of each row's preview button, as the browser would send them."""
    forms = re.findall(r'<form method="post" action="/admin/void/preview"[^>]*>(.*?)</form>', page)
    return [
        {
            name: value.replace("&quot;", '"').replace("&amp;", "&")
            for name, value in re.findall(
                r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form
            )
        }
        for form in forms
    ]


def rows_of(page: str) -> list[tuple[str, int]]:
    return [
        (signal, int(votes))
        for signal, votes in re.findall(r'<tr data-signal="(\w+)" data-votes="(\d+)"', page)
    ]


async def clear_of_an_hour_boundary() -> bool:
    """The burst must fall in one clock hour (Asia/Shanghai's are UTC's): not in the
    last seconds of one."""
    return time.time() % 3600 < 3600 - 10


async def plant(service: Service) -> tuple[list[str], list[str]]:
    """(the burst's vote ids, the others'): the burst votes for N04 from one network."""
    await wait_for(clear_of_an_hour_boundary, within=15, interval=0.2)  # once an hour
    burst = []
    for n in range(BURST):
        response = await service.vote("N04", phone(n), peer=f"{BURST_NET}.{n + 1}")
        assert response.status_code == 201, response.text
        burst.append(response.json()["vote_id"])
    others = []
    for n, peer in enumerate(OTHERS * 3):
        response = await service.vote(f"N{n % 5 + 1:02d}", phone(100 + n), peer=peer)
        assert response.status_code == 201, response.text
        others.append(response.json()["vote_id"])
    return burst, others


async def every_cell(settings: Settings) -> list[str]:
    """Every value in every table of the ledger, as text."""
    path = settings.database.path
    cells: list[str] = []
    if path is not None:
        with sqlite3.connect(path) as conn:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                for row in conn.execute(f"SELECT * FROM {table}"):
                    cells += [str(cell) for cell in row]
        return cells
    conn = await asyncpg.connect(settings.database_url)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        for (table,) in tables:
            for row in await conn.fetch(f"SELECT * FROM {table}"):
                cells += [str(cell) for cell in row]
    finally:
        await conn.close()
    return cells


async def test_a_planted_burst_is_found_previewed_exactly_and_voided(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    toml = campaign_toml() + f"\n[suspects]\nprefix_votes_per_hour = {THRESHOLD}\n"
    (tmp_path / "campaign.toml").write_text(toml)
    campaign = parse_campaign(toml)
    async with (
        console_service(
            redis_server.url,
            tmp_path,
            database_url,
            campaign=campaign,
            campaign_path=tmp_path / "campaign.toml",
        ) as service,
        organiser(service) as ann,
    ):
        burst, _ = await plant(service)
        assert (await ann.sign_in()).status_code == 303
        page = await ann.client.get("/admin/suspects")  # flushes the streams first
        assert page.status_code == 200, page.text
        assert code_of(page.text) is None
        text = page.text
        for title in ("同一网段集中投票", "候选人票数突增", "票源过于集中", "多个号码投票顺序相同"):
            assert title in text
        assert f"投了超过 {THRESHOLD} 票" in text  # the signal's sentence, with its number
        assert rows_of(text) == [("prefix_votes_per_hour", BURST)]
        refs = Refs(SECRET, campaign.id)
        [form] = preview_forms(text)
        assert form["way"] == "suspect"
        assert f'<span class="mono">{refs(form["prefixes"])[:8]}</span>' in text

        # The command says the same, in JSON.
        code, out, err = await asyncio.to_thread(
            cli, service.settings, "suspects", "--format", "json"
        )
        assert code == 0, err
        [found] = json.loads(out)
        assert (found["signal"], found["nominee"], found["votes"]) == (
            "prefix_votes_per_hour",
            None,
            BURST,
        )
        assert found["prefix_ref"] == refs(form["prefixes"])
        assert datetime.fromisoformat(found["from"]) <= datetime.fromisoformat(found["to"])

        # Its preview names exactly the burst's votes.
        preview = await ann.client.post("/admin/void/preview", data=form)
        assert preview.status_code == 200, preview.text
        assert count_of(preview.text) == BURST
        assert set(re.findall(r'class="mono">(\w+)<', preview.text)) == set(burst)
        assert "可疑活动“同一网段集中投票”" in preview.text
        confirm = {**hidden_fields(preview.text), "reason": "同一网段短时间集中投票"}
        done = await ann.client.post("/admin/void/confirm", data=confirm)
        assert done.status_code == 200, done.text
        assert f'id="voided" data-count="{BURST}"' in done.text
        assert 'href="/admin/suspects"' in done.text

        ledger = await open_ledger(service)
        try:
            rows = await ledger.rows()
            assert {vid for vid, v in rows.items() if v.void} == set(burst)
            [entry] = [e for e in await ledger.audit() if e.action == "void"]
            detail = json.loads(entry.detail)
            assert (detail["signal"], detail["count"], detail["via"]) == (
                "prefix_votes_per_hour",
                BURST,
                "console",
            )
            audit = await ann.client.get("/admin/audit?action=void")
            assert "可疑活动“同一网段集中投票”" in audit.text
        finally:
            await ledger.store.close()

        after = await ann.client.get("/admin/suspects")
        assert rows_of(after.text) == []
        assert 'data-code="none"' in after.text
        assert "没有发现可疑活动" in after.text

        # Where the votes came from is kept as keyed hashes only.
        cells = " ".join(await every_cell(service.settings))
        for address in (BURST_NET, *OTHERS, "198.51.100.0", "203.0.113.0/24"):
            assert address not in cells


async def test_a_viewer_sees_the_findings_without_a_way_to_void_them(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    toml = campaign_toml() + f"\n[suspects]\nprefix_votes_per_hour = {THRESHOLD}\n"
    campaign = parse_campaign(toml)
    async with (
        console_service(
            redis_server.url, tmp_path, campaign=campaign, accounts={"vic": "viewer"}
        ) as service,
        organiser(service) as vic,
    ):
        await plant(service)
        assert (await vic.sign_in("vic")).status_code == 303
        page = await vic.client.get("/admin/suspects")
        assert page.status_code == 200
        assert rows_of(page.text) == [("prefix_votes_per_hour", BURST)]
        assert "/admin/void" not in page.text
        assert "作废选票需要操作账号" in page.text
        assert 'href="/admin/suspects"' in page.text  # in the menu
        assert 'href="/admin/certify"' not in page.text
        for path in ("/admin/certify", "/admin/export"):
            refused = await vic.client.get(path)
            assert (refused.status_code, code_of(refused.text)) == (403, "forbidden"), path
        for path in ("/admin/certify", "/admin/export"):
            refused = await vic.post(path, {"confirm": "yes", "label": "x"})
            assert (refused.status_code, code_of(refused.text)) == (403, "forbidden"), path


async def test_a_finding_s_preview_refuses_a_tampered_form(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with console_service(redis_server.url, tmp_path) as service, organiser(service) as ann:
        assert (await ann.sign_in()).status_code == 303
        for bad in (
            {"signal": "no_such_signal", "nominee": "N01"},
            {"signal": "nominee_spike", "nominee": "N99"},
            {"signal": "prefix_votes_per_hour", "prefixes": "203.0.113.0"},
            {"signal": "same_sequence", "ids": "not/an/id"},
            {"signal": "nominee_spike"},  # names no votes at all
        ):
            refused = await ann.post("/admin/void/preview", {"way": "suspect", **bad})
            assert (refused.status_code, code_of(refused.text)) == (400, "invalid_form"), bad
