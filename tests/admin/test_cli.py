"""``votesvc admin``: accounts from the command line; passwords never from argv."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.admin.support import OTHER_PASSWORD, PASSWORD, console_service, organiser
from tests.ledger_support import cli, write_campaign
from votesvc.cli import build_parser
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings


def run(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli(settings, *argv)


async def arun(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    return await asyncio.to_thread(run, monkeypatch, settings, *argv, stdin=stdin)


def test_a_password_is_never_an_argument() -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["admin", "add-user", "ann", "--role", "viewer", "--password", "x"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["admin", "add-user", "ann", "--role", "admin"])


async def test_accounts_are_added_listed_disabled_and_given_new_passwords(
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
        code, out, err = await arun(monkeypatch, settings, "admin", "list")
        assert (code, out) == (
            0,
            "no accounts: add one with `votesvc admin add-user NAME --role operator`\n",
        )
        code, _, err = await arun(
            monkeypatch, settings, "admin", "add-user", "ann", "--role", "operator", stdin="short\n"
        )
        assert code == 2
        assert "at least 12 characters" in err
        code, out, err = await arun(
            monkeypatch,
            settings,
            "admin",
            "add-user",
            "ann",
            "--role",
            "operator",
            stdin=PASSWORD + "\nignored\n",
        )
        assert (code, out) == (0, "added ann (operator): sign in at /admin\n"), err
        code, _, err = await arun(
            monkeypatch, settings, "admin", "add-user", "ann", "--role", "viewer", stdin=PASSWORD
        )
        assert code == 1
        assert "exists already" in err
        code, _, err = await arun(
            monkeypatch, settings, "admin", "add-user", "a b", "--role", "viewer", stdin=PASSWORD
        )
        assert code == 2

        async with organiser(service) as ann:
            assert (await ann.sign_in()).status_code == 303
            code, out, _ = await arun(monkeypatch, settings, "admin", "list")
            lines = out.splitlines()
            assert lines[0].split() == ["name", "role", "status", "created", "last", "sign-in"]
            assert lines[1].split()[:3] == ["ann", "operator", "active"]
            assert re.search(r"T\d\d:\d\d:\d\d\.\d{3}\+08:00", lines[1])  # the campaign's zone
            assert lines[-1] == "times in Asia/Shanghai"

            code, out, _ = await arun(
                monkeypatch, settings, "admin", "passwd", "ann", stdin=OTHER_PASSWORD
            )
            assert (code, out) == (0, "ann: password changed; 1 sessions ended\n")
            assert (await ann.client.get("/admin/overview")).status_code == 303  # signed out
            assert (await ann.sign_in("ann", PASSWORD)).status_code == 401
            assert (await ann.sign_in("ann", OTHER_PASSWORD)).status_code == 303

            code, out, _ = await arun(monkeypatch, settings, "admin", "disable", "ann")
            assert (code, out) == (0, "ann: disabled; 1 sessions ended\n")
            assert (await ann.client.get("/admin/overview")).status_code == 404  # no account left
            code, out, _ = await arun(monkeypatch, settings, "admin", "enable", "ann")
            assert (code, out) == (0, "ann: enabled\n")
            assert (await ann.sign_in("ann", OTHER_PASSWORD)).status_code == 303
            code, _, err = await arun(monkeypatch, settings, "admin", "disable", "nobody")
            assert code == 1
            assert "no account 'nobody'" in err


def test_on_a_terminal_the_password_is_asked_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_campaign(tmp_path / "campaign.toml")
    settings = Settings(
        data_dir=tmp_path, secret=b"x" * 40, campaign_path=tmp_path / "campaign.toml"
    )
    terminal = io.StringIO()
    monkeypatch.setattr(terminal, "isatty", lambda: True)
    monkeypatch.setattr("sys.stdin", terminal)
    answers = iter([PASSWORD, OTHER_PASSWORD, PASSWORD, PASSWORD])
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", getpass)
    code, _, err = cli(settings, "admin", "add-user", "ann", "--role", "viewer")
    assert code == 2
    assert "the two passwords differ" in err
    code, out, err = cli(settings, "admin", "add-user", "ann", "--role", "viewer")
    assert (code, out) == (0, "added ann (viewer): sign in at /admin\n"), err
    assert prompts[0].startswith("New password (at least 12 characters")
    assert len(prompts) == 4
