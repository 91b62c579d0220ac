# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""审计日志: every void, restore, export, sign-in and account change; filters."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.admin.support import PASSWORD, code_of, console_service, csrf_of, organiser
from tests.ledger_support import cli, write_campaign
from tests.support import phone
from votesvc.redis_server import EmbeddedRedis


def actions_of(page: str) -> list[str]:
    return re.findall(r'<tr data-action="(\w+)"', page)


async def test_the_audit_page_shows_each_action_and_filters(
    redis: aioredis.Redis,
    redis_server: EmbeddedRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign = write_campaign(tmp_path / "campaign.toml")
    async with console_service(
        redis_server.url,
        tmp_path,
        accounts={},
        campaign=campaign,
        campaign_path=tmp_path / "campaign.toml",
    ) as service:
        settings = service.settings
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        code, out, err = await asyncio.to_thread(
            cli, settings, "admin", "add-user", "ann", "--role", "operator", "--by", "ops"
        )
        assert code == 0, err
        assert (await service.vote("N01", phone(1))).status_code == 201
        async with organiser(service) as ann:
            assert (await ann.sign_in("ann", "not the password")).status_code == 401
            assert (await ann.sign_in()).status_code == 303
            preview = await ann.post("/admin/void/preview", {"way": "nominee", "nominee": "N01"})
            confirm = dict(
                re.findall(
                    r'<input type="hidden" name="(\w+)" value="([^"]*)"',
                    preview.text.split('id="confirm"')[1],
                )
            )
            done = await ann.client.post(
                "/admin/void/confirm", data={**confirm, "reason": "测试作废"}
            )
            assert done.status_code == 200
            target = tmp_path / "ledger.csv"
            code, _, err = await asyncio.to_thread(
                cli, settings, "export", "--out", str(target), "--by", "ops"
            )
            assert code == 0, err
            code, out, err = await asyncio.to_thread(cli, settings, "restore", "--by", "ops")
            assert code == 0, out + err
            out_page = await ann.client.post(
                "/admin/logout", data={"csrf": csrf_of((await ann.client.get("/admin/audit")).text)}
            )
            assert out_page.status_code == 303
            assert (await ann.sign_in()).status_code == 303

            page = (await ann.client.get("/admin/audit")).text
            assert actions_of(page) == [  # newest first
                "signin",
                "signout",
                "restore",
                "export",
                "void",
                "signin",
                "signin_failed",
                "add_user",
            ]
            for label in (
                "新建后台账号",
                "登录失败（密码不对）",
                "作废选票",
                "导出账本",
                "从账本恢复实时计数",
                "退出登录",
            ):
                assert label in page, label
            assert "测试作废" in page  # the reason
            assert "作废 1 张（按候选人 Nominee 1）" in page
            assert "（北京时间）" in page
            assert "<td>ops</td>" in page

            voids = (await ann.client.get("/admin/audit", params={"action": "void"})).text
            assert actions_of(voids) == ["void"]
            by_ops = (await ann.client.get("/admin/audit", params={"actor": "ops"})).text
            assert actions_of(by_ops) == ["restore", "export", "add_user"]
            future = (
                await ann.client.get("/admin/audit", params={"since": "2099-01-01T00:00"})
            ).text
            assert actions_of(future) == []
            assert 'data-code="empty"' in future
            wrong = (await ann.client.get("/admin/audit", params={"until": "soon"})).text
            assert code_of(wrong) is None
            assert 'data-code="invalid_form"' in wrong
