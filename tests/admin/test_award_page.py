# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""评奖结果: ranks with 并列第N, the cut line after award_seats, the tie rule, provisional."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import redis.asyncio as aioredis

from tests.admin.support import code_of, console_service, organiser
from tests.support import make_campaign
from votesvc.ledger.award import TIE_RULE_ZH
from votesvc.ledger.store import VoteRow, build_store
from votesvc.redis_server import EmbeddedRedis

CLOSES = "2026-06-30T20:00:00+08:00"


def rows_of(page: str) -> list[tuple[str, str, str]]:
    """(rank, nominee id, awarded) per row, in order."""
    return [
        (rank, nid, awarded)
        for nid, awarded, rank in re.findall(
            r'<tr class="[^"]*" data-id="(\w+)" data-place="\d+" data-awarded="(\w+)">'
            r'<td class="rank">([^<]+)</td>',
            page,
        )
    ]


async def test_the_award_page_ranks_ties_and_draws_the_line_after_award_seats(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    campaign = make_campaign(award_seats=5, nominees=8, closes_at=CLOSES)
    start = int(datetime.fromisoformat("2026-06-01T08:00:00+08:00").timestamp() * 1000)
    # N05 and N06 tie on 2 across the line after place 5; N06 got there first.
    plan = {"N01": 5, "N02": 4, "N03": 3, "N04": 3, "N06": 2, "N05": 2, "N07": 1}
    votes: list[VoteRow] = []
    for nominee, count in plan.items():
        for _ in range(count):
            n = len(votes)
            votes.append(
                VoteRow(f"{n:032x}", campaign.id, nominee, f"{n:064x}", "0" * 16, start + n)
            )
    async with (
        console_service(redis_server.url, tmp_path, database_url, campaign=campaign) as service,
        organiser(service) as ann,
    ):
        store = build_store(service.settings)
        await store.open()
        try:
            await store.insert_votes(votes)
        finally:
            await store.close()
        assert (await ann.sign_in()).status_code == 303
        page = (await ann.client.get("/admin/award")).text
        assert 'data-code="provisional"' in page
        assert "暂定结果" in page
        assert "投票还在进行（2026-06-30 20:00:00（北京时间）截止）" in page
        assert rows_of(page) == [
            ("第1名", "N01", "true"),
            ("第2名", "N02", "true"),
            ("并列第3名", "N03", "true"),
            ("并列第3名", "N04", "true"),
            ("并列第5名", "N06", "true"),
            ("并列第5名", "N05", "false"),
            ("第7名", "N07", "false"),
            ("第8名", "N08", "false"),
        ]
        cut = page.index('id="cut" data-after="5"')
        assert page.index('data-id="N06"') < cut < page.index('data-id="N05"')
        assert "以上 5 位获“最受欢迎”奖" in page
        assert 'data-code="cut_tie"' in page
        assert "Nominee 6 获奖，Nominee 5 未获奖" in page
        assert TIE_RULE_ZH in page
        assert "有效票 20 张" in page
        assert "2026-06-01 08:00:00（北京时间）" in page  # N01 reached 5 at its 5th vote
        assert code_of(page) is None

        service.clock.now = datetime.fromisoformat(CLOSES).timestamp() + 1
        assert (await ann.sign_in()).status_code == 303  # the session outlived its 12 hours
        final = (await ann.client.get("/admin/award")).text
        assert 'data-code="final"' in final
        assert "最终结果" in final
