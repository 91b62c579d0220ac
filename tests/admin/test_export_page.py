"""导出: the digest and the audit row, the file (BOM, Chinese names) and its .sha256;
the same bytes twice; a ledger changed since is said, not served."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
from pathlib import Path

import redis.asyncio as aioredis

from tests.admin.support import code_of, console_service, organiser
from tests.admin.test_certify_page import closing_campaign, rows
from tests.admin.test_void_page import hidden_fields
from tests.support import SECRET
from votesvc.ledger.export import BOM, Refs
from votesvc.ledger.store import build_store
from votesvc.redis_server import EmbeddedRedis


def digest_of(page: str) -> str:
    found = re.search(r'<code id="sha256">([0-9a-f]{64})</code>', page)
    assert found is not None, page
    return found[1]


def links_of(page: str) -> tuple[str, str]:
    file, sha = re.findall(r'href="(/admin/export/(?:file|sha256)\?[^"]+)"', page)
    return file.replace("&amp;", "&"), sha.replace("&amp;", "&")


async def test_an_export_from_the_console(
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
        finally:
            await store.close()
        assert (await ann.sign_in()).status_code == 303
        form = await ann.client.get("/admin/export")
        assert (form.status_code, code_of(form.text)) == (200, None)
        assert f'name="label" maxlength="64" value="{campaign.id}"' in form.text
        assert "还没有导出过" in form.text
        for column in ("phone_ref", "prefix_ref", "void_reason"):
            assert f"<code>{column}</code>" in form.text

        done = await ann.post("/admin/export", {"label": campaign.id})
        assert (done.status_code, code_of(done.text)) == (200, None)
        assert 'id="rows" data-count="13"' in done.text
        digest = digest_of(done.text)
        file_link, sha_link = links_of(done.text)

        got = await ann.client.get(file_link)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "text/csv; charset=utf-8"
        name = f"votes-{campaign.id}.csv"
        assert got.headers["content-disposition"] == f'attachment; filename="{name}"'
        assert got.headers["cache-control"] == "no-store"
        data = got.content
        assert data.startswith(BOM)
        assert hashlib.sha256(data).hexdigest() == digest
        table = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
        assert [r["nominee_name"] for r in table[:4]] == ["王建国"] * 4
        assert table[0]["phone_ref"] == Refs(SECRET, campaign.id)(f"{0:064x}")
        assert (await ann.client.get(file_link)).content == data  # the same bytes again

        check = await ann.client.get(sha_link)
        assert check.status_code == 200
        assert check.text == f"{digest}  {name}\n"
        assert check.headers["content-disposition"] == f'attachment; filename="{name}.sha256"'

        store = build_store(service.settings)
        await store.open()
        try:
            [entry] = await store.audit_log(campaign.id, action="export")
        finally:
            await store.close()
        assert entry.actor == "ann"
        assert json.loads(entry.detail) == {
            "file": name,
            "rows": 13,
            "void": 0,
            "label": campaign.id,
            "internal": False,
            "sha256": digest,
            "via": "console",
        }
        listed = await ann.client.get("/admin/export")
        assert f'<td class="mono">{digest}</td>' in listed.text

        # Another label, in Chinese: other refs, a plain file name.
        other = await ann.post("/admin/export", {"label": "审计组"})
        assert other.status_code == 200
        assert digest_of(other.text) != digest
        assert f"votes-{campaign.id}.csv" in other.text
        blank = await ann.post("/admin/export", {"label": "  "})
        assert (blank.status_code, code_of(blank.text)) == (400, "invalid_form")

        # A void since the export: the old link is refused, saying why.
        preview = await ann.post("/admin/void/preview", {"way": "nominee", "nominee": "N05"})
        voided = await ann.client.post(
            "/admin/void/confirm", data={**hidden_fields(preview.text), "reason": "重复"}
        )
        assert voided.status_code == 200
        stale = await ann.client.get(file_link)
        assert (stale.status_code, code_of(stale.text)) == (409, "export_changed")
        assert "重新生成" in stale.text
        bad = await ann.client.get("/admin/export/file?label=x&sha256=nothex")
        assert (bad.status_code, code_of(bad.text)) == (200, None)  # the export page again
        copies = await asyncio.to_thread(lambda: list(tmp_path.glob(".export-*")))
        assert copies == []  # the downloads' copies are gone
