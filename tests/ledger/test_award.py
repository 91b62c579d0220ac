# ruff: noqa: RUF001  (Chinese texts use full-width punctuation)
"""The most popular award: tie rule, refusal, --provisional, the cut line, formats."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.ledger_fixtures import ledger_settings
from tests.ledger_support import cast, cli, write_campaign
from tests.localhost import wait_until
from tests.support import make_campaign, phone
from votesvc.cli import build_parser
from votesvc.ledger.award import TIE_RULE, Award, award_caveats, in_chinese, rank_award
from votesvc.ledger.store import NomineeTotal, VoteRow, build_store
from votesvc.redis_server import EmbeddedRedis

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_tie_rule_first_to_reach_the_total_then_id() -> None:
    campaign = make_campaign(nominees=6)
    totals = [
        NomineeTotal("N04", 5, 900),
        NomineeTotal("N02", 7, 500),
        NomineeTotal("N01", 5, 700),  # reached 5 before N04
        NomineeTotal("N03", 5, 700),  # same moment as N01: the id decides
    ]
    placings = rank_award(campaign, totals, top=3)
    assert [(p.place, p.nominee.id, p.votes) for p in placings] == [
        (1, "N02", 7),
        (2, "N01", 5),
        (3, "N03", 5),
        (4, "N04", 5),
        (5, "N05", 0),
        (6, "N06", 0),
    ]
    assert [p.awarded for p in placings] == [True, True, True, False, False, False]


@pytest.fixture
def clean_redis(redis_server: EmbeddedRedis) -> EmbeddedRedis:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server


def test_award_refuses_until_closed_and_flushed_then_ranks_with_the_rule(
    clean_redis: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    now = time.time()
    opens = datetime.fromtimestamp(now - 86400, SHANGHAI).isoformat()
    # Open for an hour while the votes go in (each through a service of its own:
    # seconds on a loaded machine), then closing a few seconds after they are in.
    campaign = write_campaign(
        tmp_path / "campaign.toml",
        opens_at=opens,
        closes_at=datetime.fromtimestamp(now + 3600, SHANGHAI).isoformat(timespec="seconds"),
    )
    settings = ledger_settings(
        tmp_path,
        database_url,
        redis_url=clean_redis.url,
        campaign_path=tmp_path / "campaign.toml",
    )
    # N02 reaches 2 votes before N01 does; N03 leads with 3.
    plan = ["N03", "N02", "N02", "N03", "N01", "N01", "N03", "N05"]
    for n, nominee in enumerate(plan):
        asyncio.run(
            cast(
                clean_redis.url, tmp_path / "api", campaign, [(nominee, phone(n))], now=now - 60 + n
            )
        )
    closes = datetime.fromtimestamp(time.time() + 5.0, SHANGHAI).isoformat(timespec="seconds")
    closes_at = write_campaign(
        tmp_path / "campaign.toml", opens_at=opens, closes_at=closes
    ).closes_at.timestamp()

    code, out, err = cli(settings, "award")
    assert code == 1
    assert "voting window is still open" in err
    assert "8 accepted votes are still pending" in err
    assert "--provisional" in err

    code, out, _ = cli(settings, "award", "--provisional")
    assert code == 0
    assert "PROVISIONAL" in out
    assert TIE_RULE in out

    assert cli(settings, "flush", "--once")[0] == 0
    wait_until(lambda: time.time() > closes_at, 10, "the campaign closed")  # during the test

    code, out, err = cli(settings, "award")
    assert code == 0, err
    assert "FINAL" in out
    assert "PROVISIONAL" not in out
    assert TIE_RULE in out
    assert "cut line: places 1-10" in out
    ranked = [line.split()[1] for line in out.splitlines() if line[:5].strip().isdigit()]
    assert ranked[:5] == ["N03", "N02", "N01", "N05", "N04"]
    assert len(ranked) == 30

    code, out, _ = cli(settings, "award", "--top", "2", "--format", "json")
    document = json.loads(out)
    assert document["final"] is True
    assert document["tie_rule"] == TIE_RULE
    assert [(n["id"], n["votes"], n["awarded"]) for n in document["nominees"][:3]] == [
        ("N03", 3, True),
        ("N02", 2, True),
        ("N01", 2, False),
    ]
    assert "N02 and N01 both have 2 votes" in document["cut_line_tie"]

    code, out, _ = cli(settings, "award", "--format", "csv")
    comments = [line for line in out.splitlines() if line.startswith("#")]
    assert any(TIE_RULE in line for line in comments)
    body = "\n".join(line for line in out.splitlines() if not line.startswith("#"))
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(r["place"], r["nominee"], r["votes"], r["awarded"]) for r in rows[:2]] == [
        ("1", "N03", "3", "yes"),
        ("2", "N02", "2", "yes"),
    ]
    assert rows[10]["awarded"] == "no"

    # The award's size is the campaign's: award_seats moves the line; --top still overrides.
    write_campaign(tmp_path / "campaign.toml", opens_at=opens, closes_at=closes, award_seats=5)
    code, out, _ = cli(settings, "award")
    assert code == 0
    assert "cut line: places 1-5" in out
    code, out, _ = cli(settings, "award", "--top", "3")
    assert "cut line: places 1-3" in out


@pytest.mark.parametrize("top", ["0", "-1", "two"])
def test_top_must_be_a_whole_number_of_at_least_one(
    top: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["award", "--top", top])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --top: must be a whole number >= 1, not '{top}'" in err


def test_award_before_the_window_opens_says_voting_has_not_opened(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    opens = datetime.fromtimestamp(time.time() + 86400, SHANGHAI)
    write_campaign(
        tmp_path / "campaign.toml",
        opens_at=opens.isoformat(timespec="seconds"),
        closes_at=(opens + timedelta(days=7)).isoformat(timespec="seconds"),
    )
    settings = ledger_settings(
        tmp_path, None, redis_url=clean_redis.url, campaign_path=tmp_path / "campaign.toml"
    )
    code, _, err = cli(settings, "award")
    assert code == 1
    assert (
        f"voting has not opened yet (it opens {opens.isoformat(sep=' ', timespec='seconds')})"
        in err
    )
    assert "still open" not in err
    code, out, _ = cli(settings, "award", "--provisional")
    assert code == 0
    assert "PROVISIONAL, not the final result: voting has not opened yet" in out


def test_the_award_counts_only_votes_accepted_inside_the_window(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    opens = datetime.fromtimestamp(time.time() - 7 * 86400, SHANGHAI).replace(microsecond=0)
    closes = opens + timedelta(days=1)
    write_campaign(
        tmp_path / "campaign.toml",
        opens_at=opens.isoformat(),
        closes_at=closes.isoformat(),
        nominees=3,
    )
    settings = ledger_settings(
        tmp_path, None, redis_url=clean_redis.url, campaign_path=tmp_path / "campaign.toml"
    )
    inside = int(opens.timestamp() * 1000) + 1000
    outside = int(closes.timestamp() * 1000) + 1  # a host whose clock ran slow let it in

    async def fill() -> None:
        store = build_store(settings)
        await store.open()
        rows = [
            VoteRow(f"{n:032x}", "test-campaign", "N02", f"{n:064x}", "0" * 16, inside)
            for n in range(2)
        ]
        rows += [
            VoteRow(f"{n:032x}", "test-campaign", "N03", f"{n:064x}", "0" * 16, outside)
            for n in range(2, 5)
        ]
        await store.insert_votes(rows)
        await store.close()

    asyncio.run(fill())
    code, out, err = cli(settings, "award", "--format", "json")
    assert code == 0, err
    votes = {row["id"]: row["votes"] for row in json.loads(out)["nominees"]}
    assert votes == {"N01": 0, "N02": 2, "N03": 0}
    document = json.loads(out)
    assert document["timezone"] == "Asia/Shanghai"
    reached = datetime.fromtimestamp(inside / 1000, SHANGHAI).isoformat(timespec="milliseconds")
    assert document["nominees"][0]["reached_at"] == reached  # the campaign's zone, its offset
    code, out, _ = cli(settings, "award")
    assert reached in out
    assert "times in Asia/Shanghai" in out


def test_the_award_in_chinese_shares_ranks_and_explains_a_tie_across_the_line() -> None:
    campaign = make_campaign(nominees=5, award_seats=2)
    totals = [
        NomineeTotal("N01", 5, 100),
        NomineeTotal("N02", 3, 300),
        NomineeTotal("N03", 3, 200),  # reached 3 before N02
        NomineeTotal("N04", 1, 50),
        NomineeTotal("N05", 1, 60),
    ]
    award = Award(
        campaign=campaign,
        placings=rank_award(campaign, totals, 2),
        top=2,
        provisional=False,
        caveats=[],
        void_votes=4,
        computed_at=1.0,
    )
    zh = in_chinese(award)
    assert zh.ranks == ["第1名", "并列第2名", "并列第2名", "并列第4名", "并列第4名"]
    assert zh.cut_after == 2
    assert zh.cut_tie is not None
    assert "Nominee 3 获奖，Nominee 2 未获奖" in zh.cut_tie
    assert "只剩 1 个获奖名额" in zh.cut_tie
    assert zh.status.startswith("最终结果")
    assert "有效票 13 张，已作废的 4 张不计入" in zh.summary
    caveats = award_caveats(campaign, campaign.opens_at.timestamp() + 1, 3)
    assert [c.zh for c in caveats] == [
        "投票还在进行（2027-12-31 23:59:59（北京时间）截止）",
        "还有 3 张已收到的选票正在写入账本",
    ]
