# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""评奖结果, the award: from the ledger only, as ``votesvc award`` computes it.

Void votes and votes outside the voting window do not count. Equal votes
share a rank (并列第N); the cut line follows the campaign's ``award_seats``;
a tie across it is spelt out with what the tie rule decided. While voting is
open or votes wait in Redis, the page says the result is provisional.
"""

from __future__ import annotations

from votesvc.admin.html import Viewer, esc, layout, notice, number
from votesvc.campaign import Campaign
from votesvc.connection import RedisClient
from votesvc.keys import Keys
from votesvc.ledger.award import Award, award_caveats, in_chinese, rank_award
from votesvc.ledger.reconcile import pending_votes
from votesvc.ledger.store import Store
from votesvc.ledger.times import zh_time

__all__ = ["award_page", "read_award"]


async def read_award(
    campaign: Campaign, client: RedisClient, keys: Keys, store: Store, now: float
) -> Award:
    """The award now; raises StoreUnavailable, RedisError."""
    pending = len(await pending_votes(client, keys, store))
    caveats = award_caveats(campaign, now, pending)
    totals = await store.totals(campaign.id, window=campaign.window_ms)
    top = campaign.rules.award_seats
    return Award(
        campaign=campaign,
        placings=rank_award(campaign, totals, top),
        top=top,
        provisional=bool(caveats),
        caveats=caveats,
        void_votes=await store.count(campaign.id, void=True),
        computed_at=now,
    )


def award_page(campaign: Campaign, award: Award, viewer: Viewer) -> str:
    zh = in_chinese(award)
    tz = campaign.timezone
    status = notice(
        "warn" if award.provisional else "ok",
        f"<strong>{esc(zh.status)}</strong>",
        code="provisional" if award.provisional else "final",
    )
    rows = []
    for index, placing in enumerate(award.placings):
        nominee = placing.nominee
        reached = "—" if placing.reached_at is None else zh_time(placing.reached_at, tz)
        cls = "awarded" if placing.awarded else ""
        if zh.cut_tie is not None and placing.votes == award.placings[award.top].votes:
            cls += " tie"
        rows.append(
            f'<tr class="{cls.strip()}" data-id="{esc(nominee.id)}" data-place="{placing.place}"'
            f' data-awarded="{str(placing.awarded).lower()}">'
            f'<td class="rank">{esc(zh.ranks[index])}</td>'
            f'<td>{esc(nominee.name)}</td><td class="wide-only">{esc(nominee.trade)}</td>'
            f'<td class="wide-only">{esc(nominee.employer)}</td>'
            f'<td class="num">{number(placing.votes)}</td><td>{esc(reached)}</td></tr>'
        )
        if zh.cut_after is not None and index + 1 == zh.cut_after:
            rows.append(
                f'<tr class="cut" id="cut" data-after="{zh.cut_after}">'
                f'<td colspan="6">{esc(zh.cut_line)}</td></tr>'
            )
    parts = [
        status,
        f"<p>{esc(zh.summary)}</p>",
        f"<p>本次评选前 <strong>{award.top}</strong> 名获“最受欢迎”奖。</p>",
    ]
    if zh.cut_tie is not None:
        parts.append(notice("warn", esc(zh.cut_tie), code="cut_tie"))
    parts += [
        '<div class="table-wrap"><table class="ranking"><thead><tr><th>名次</th><th>候选人</th>'
        '<th class="wide-only">工种</th><th class="wide-only">单位</th>'
        '<th class="num">有效票</th><th>达到该票数的时间</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div>",
        f'<p class="hint" id="tie-rule">{esc(zh.tie_rule)}</p>',
        '<p class="hint">“并列第N名”表示票数相同；表中的先后顺序和获奖与否按并列规则确定。</p>',
    ]
    return layout(campaign, "评奖结果", "".join(parts), page="award", viewer=viewer)
