# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""总览, the overview: the live race, the ledger keeping up, Redis and the ledger's health.

The live figures come from Redis (as the dashboard's), the pace and today's
voters from the ledger, the backlog from the vote streams. Each part that
cannot be read says so instead of failing the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from votesvc.admin.html import Viewer, esc, layout, notice, number
from votesvc.campaign import Campaign
from votesvc.connection import RedisClient
from votesvc.days import campaign_day
from votesvc.errors import NotReady
from votesvc.keys import Keys
from votesvc.ledger.award import shared_ranks
from votesvc.ledger.gauges import LedgerGauges, sample_ledger
from votesvc.ledger.store import Store, StoreUnavailable
from votesvc.ledger.times import zh_time
from votesvc.tally import TallyBoard

__all__ = ["Overview", "overview_page", "read_overview"]

PACE_MINUTES = 5  # votes per minute: the average over this many minutes
_REDIS_STATES = {
    "ok": "正常",
    "redis_unreachable": "无法连接：投票暂停（返回“服务繁忙”），请立即联系技术人员",
    "redis_data_lost": "数据丢失：投票暂停，需要技术人员运行 votesvc restore 从账本恢复",
    "campaign_not_set_up": "尚未就绪：活动还没有完成初始化，请联系技术人员",
}


@dataclass(frozen=True, slots=True)
class Overview:
    now_ms: int
    counts: dict[str, int] | None  # live votes per nominee (None: Redis unreachable)
    per_minute: float | None  # from the ledger (None: unreadable)
    gauges: LedgerGauges | None  # the backlog (None: Redis unreachable)
    redis_state: str  # a key of _REDIS_STATES
    ledger_votes: tuple[int, int] | None  # (all, void); None: the ledger is unavailable
    otp_today: tuple[int, int] | None  # (codes sent, verified) today, where SMS verifies
    voters_today: int | None


async def read_overview(
    campaign: Campaign,
    client: RedisClient,
    keys: Keys,
    board: TallyBoard,
    store: Store,
    ready: Callable[[], Awaitable[None]],
    now: float,
) -> Overview:
    now_ms = int(now * 1000)
    try:
        await asyncio.wait_for(ready(), timeout=2.0)
        redis_state = "ok"
    except NotReady as exc:
        redis_state = exc.reason if exc.reason in _REDIS_STATES else "redis_unreachable"
    except TimeoutError:
        redis_state = "redis_unreachable"
    counts: dict[str, int] | None = None
    gauges = None
    otp_today = None
    day = campaign_day(now, campaign.timezone)
    try:
        counts = await board.read_counts()
        gauges = await sample_ledger(client, keys)
        if campaign.verification.sms:
            # HGETALL, which the Redis ACL grants votesvc already (deploy/redis/users.acl)
            stats = await client.hgetall(keys.otp_stats(day.label))
            otp_today = (int(stats.get(b"sent", 0)), int(stats.get(b"verified", 0)))
    except (RedisError, OSError):
        pass
    per_minute = ledger_votes = voters = None
    try:
        recent = await store.count(campaign.id, window=(now_ms - PACE_MINUTES * 60_000, now_ms))
        per_minute = recent / PACE_MINUTES
        ledger_votes = (
            await store.count(campaign.id),
            await store.count(campaign.id, void=True),
        )
        if campaign.verification.required:
            today = (int(day.start * 1000), int(day.end * 1000) - 1)
            voters = await store.voters(campaign.id, window=today)
    except StoreUnavailable:
        pass
    return Overview(
        now_ms, counts, per_minute, gauges, redis_state, ledger_votes, otp_today, voters
    )


def _card(label: str, value: str, *, cls: str = "", hint: str = "", key: str = "") -> str:
    data = f' data-key="{esc(key)}"' if key else ""
    return (
        f'<div class="card"{data}><span class="label">{label}</span>'
        f'<span class="value {cls}">{value}</span>'
        + (f'<span class="hint">{hint}</span>' if hint else "")
        + "</div>"
    )


def _live_table(campaign: Campaign, counts: dict[str, int]) -> str:
    seats = campaign.rules.award_seats
    order = sorted(campaign.nominees, key=lambda n: (-counts.get(n.id, 0), n.id))
    votes = [counts.get(n.id, 0) for n in order]
    ranks = shared_ranks(votes)
    cut_votes = votes[seats - 1] if seats < len(order) else None
    straddles = cut_votes is not None and votes[seats] == cut_votes
    shown = seats + 5 if seats + 5 < len(order) else len(order)
    rows = []
    for index, nominee in enumerate(order[:shown]):
        tied = ranks.count(ranks[index]) > 1
        label = f"并列第{ranks[index]}名" if tied else f"第{ranks[index]}名"
        across = straddles and votes[index] == cut_votes
        cls = "tie" if across else ("awarded" if index < seats else "")
        rows.append(
            f'<tr class="{cls}" data-id="{esc(nominee.id)}" data-votes="{votes[index]}">'
            f'<td class="rank">{label}</td><td>{esc(nominee.name)}</td>'
            f"<td>{esc(nominee.trade)}</td>"
            f'<td class="num">{number(votes[index])}</td></tr>'
        )
        if index == seats - 1 and seats < len(order):
            rows.append(
                f'<tr class="cut" id="cut" data-after="{seats}"><td colspan="4">'
                f"获奖线：以上前 {seats} 名暂列“最受欢迎”奖</td></tr>"
            )
    note = ""
    if straddles and cut_votes is not None:
        note = notice(
            "warn",
            f"有 {votes.count(cut_votes)} 位候选人同为 {number(cut_votes)} 票，并列在获奖线上"
            "（橙色行）。谁获奖由并列规则决定，请看“评奖结果”页。",
        )
    return (
        f"<h2>实时前 {seats} 名</h2>"
        '<p class="muted">来自实时计数，随投票变化；已作废的选票不计入。'
        f"表中列出前 {shown} 名，完整名次见“评奖结果”。</p>"
        '<div class="table-wrap"><table class="ranking"><thead><tr><th>名次</th><th>候选人</th>'
        "<th>工种</th>"
        '<th class="num">票数</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div>"
        + note
    )


def overview_page(campaign: Campaign, overview: Overview, viewer: Viewer) -> str:
    tz = campaign.timezone
    parts = [
        f'<p class="muted">数据时间：{zh_time(overview.now_ms, tz)}。'
        '<a href="/admin/overview">刷新</a></p>'
    ]
    counts = overview.counts
    total = number(sum(counts.values())) if counts is not None else "—"
    pace = "—" if overview.per_minute is None else f"{overview.per_minute:,.1f}"
    cards = [
        _card("总票数（实时）", total, key="total"),
        _card(
            "每分钟票数",
            pace,
            hint=f"最近 {PACE_MINUTES} 分钟的平均，按已写入账本的选票计算",
            key="pace",
        ),
    ]
    gauges = overview.gauges
    if gauges is None:
        cards.append(_card("待写入账本", "—", key="backlog"))
    else:
        lag = (
            "没有积压"
            if gauges.oldest_ms is None
            else f"最早一张已等待 {max(0, overview.now_ms - gauges.oldest_ms) / 1000:,.1f} 秒"
        )
        writers = f"{gauges.flushers_alive} 个写入进程在运行"
        cards.append(
            _card(
                "待写入账本",
                f"{number(gauges.backlog)} 张",
                hint=f"{lag}；{writers}",
                key="backlog",
            )
        )
    good = overview.redis_state == "ok"
    cards.append(
        _card(
            "Redis（实时计数）",
            _REDIS_STATES[overview.redis_state],
            cls="small " + ("good" if good else "bad"),
            key="redis",
        )
    )
    if overview.ledger_votes is None:
        ledger = _card("账本数据库", "无法连接，请联系技术人员", cls="small bad", key="ledger")
    else:
        every, void = overview.ledger_votes
        ledger = _card(
            "账本数据库",
            "正常",
            cls="small good",
            hint=f"已入账 {number(every)} 张，其中已作废 {number(void)} 张",
            key="ledger",
        )
    cards.append(ledger)
    parts.append('<div class="cards">' + "".join(cards) + "</div>")
    if campaign.verification.required:
        sent, verified = overview.otp_today or (None, None)
        voters = overview.voters_today
        checks = []
        if campaign.verification.sms:
            checks += [
                _card("今天发出的验证码", "—" if sent is None else number(sent), key="otp-sent"),
                _card(
                    "今天验证成功",
                    "—" if verified is None else number(verified),
                    key="otp-verified",
                ),
            ]
        checks.append(
            _card(
                "今天投了票的人数",
                "—" if voters is None else number(voters),
                hint="按手机号去重，已写入账本的选票",
                key="voters",
            )
        )
        parts.append("<h2>今天的验证</h2>" + '<div class="cards">' + "".join(checks) + "</div>")
    if counts is None:
        parts.append(notice("error", "实时计数暂时读不到（Redis 无法连接）。"))
    else:
        parts.append(_live_table(campaign, counts))
    return layout(campaign, "总览", "".join(parts), page="overview", viewer=viewer)
