# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""认证结果, certifying the result: operators only, after the vote, once.

Before: why it cannot be done yet (voting open, votes still being written to
the ledger), or what certifying does, the award it would publish and a form
that asks to confirm. After: when and by whom, the ledger's counts, the
export's SHA-256 and the winners as published at ``/results``.
"""

from __future__ import annotations

import json
from typing import Any

from votesvc.admin.html import Viewer, csrf_field, esc, layout, notice, number
from votesvc.campaign import Campaign
from votesvc.ledger.award import TIE_RULE_ZH, Caveat, Placing
from votesvc.ledger.certify import tie_places
from votesvc.ledger.store import Certification
from votesvc.ledger.times import zh_time

__all__ = ["certified_page", "certify_form_page", "place_zh"]


def place_zh(place: int, shared: bool) -> str:
    return f"并列第{place}名" if shared else f"第{place}名"


def _winners_table(winners: list[dict[str, Any]]) -> str:
    """The published winners: place (并列 where the tie rule did not separate), name..."""
    places = [int(w["place"]) for w in winners]
    rows = "".join(
        f'<tr data-id="{esc(w["id"])}" data-place="{int(w["place"])}">'
        f'<td class="rank">{place_zh(int(w["place"]), places.count(int(w["place"])) > 1)}</td>'
        f"<td>{esc(w['name'])}</td><td>{esc(w['trade'])}</td>"
        f'<td class="num">{number(int(w["votes"]))}</td></tr>'
        for w in winners
    )
    return (
        '<div class="table-wrap"><table class="ranking" id="winners"><thead><tr><th>名次</th>'
        '<th>候选人</th><th>工种</th><th class="num">有效票</th></tr></thead><tbody>'
        + rows
        + "</tbody></table></div>"
    )


def certify_form_page(
    campaign: Campaign,
    viewer: Viewer,
    *,
    caveats: list[Caveat],
    placings: list[Placing],
    seats: int,
    now_ms: int,
    error: str | None = None,
    status_code: str | None = None,
) -> str:
    """Not yet (``caveats``: why), or the award to publish and the form to certify it."""
    parts = []
    if error:
        parts.append(notice("error", error, code=status_code))
    if caveats:
        reasons = "".join(f"<li>{esc(caveat.zh)}</li>" for caveat in caveats)
        parts.append(
            notice(
                "warn",
                f"<strong>现在还不能认证结果：</strong><ul>{reasons}</ul>"
                "投票截止、收到的选票全部写入账本后，再来这里认证。"
                '<a href="/admin/certify">刷新</a>',
                code="not_ready",
            )
        )
        return layout(
            campaign, "认证结果", "".join(parts), page="certify", viewer=viewer, code="not_ready"
        )
    places = tie_places(placings)
    winners = [
        {
            "place": place,
            "id": p.nominee.id,
            "name": p.nominee.name,
            "trade": p.nominee.trade,
            "votes": p.votes,
        }
        for p, place in zip(placings, places, strict=True)
        if p.awarded
    ]
    parts += [
        "<p>投票已经截止，收到的选票都已写入账本。认证之后：</p><ul>"
        '<li>下面的获奖名单会在公开的<a href="/results">结果公布页</a>上公布；</li>'
        "<li>选票全部冻结，<strong>不能再作废任何选票</strong>；</li>"
        "<li>认证人、时间、完整的排名、账本中的选票数和导出文件的 SHA-256 校验值记入审计日志。"
        "</li></ul>"
        f'<p class="hint">按账本计算于 {esc(zh_time(now_ms, campaign.timezone))}。'
        '认证之前，请先看过<a href="/admin/suspects">可疑活动</a>和'
        '<a href="/admin/award">评奖结果</a>。这一步不能撤销。</p>',
        f"<h2>将要公布的获奖名单（前 {seats} 名）</h2>",
        _winners_table(winners),
        f'<p class="hint">{esc(TIE_RULE_ZH)}</p>',
        '<form method="post" action="/admin/certify" class="panel" id="certify">'
        f"{csrf_field(viewer.csrf)}"
        '<label class="check"><input type="checkbox" name="confirm" value="yes" required> '
        "我已核对可疑活动和评奖结果，确认认证并公布</label>"
        '<button type="submit" class="danger">认证并公布结果</button></form>',
    ]
    return layout(
        campaign, "认证结果", "".join(parts), page="certify", viewer=viewer, code=status_code
    )


def certified_page(
    campaign: Campaign, certification: Certification, viewer: Viewer, *, just_now: bool = False
) -> str:
    """The certification: when, by whom, the counts, the digest and the winners."""
    tz = campaign.timezone
    result: dict[str, Any] = json.loads(certification.result)
    when = zh_time(certification.certified_at, tz)
    head = (
        "<strong>结果已认证并公布。</strong>"
        if just_now
        else f"<strong>评选结果已于 {esc(when)} 认证并公布。</strong>"
    )
    parts = [
        notice(
            "ok",
            head + '公开的结果见<a href="/results">结果公布页</a>；选票已经冻结，不能再作废。',
            code="certified",
        ),
        '<dl class="facts">'
        f"<dt>认证时间</dt><dd>{esc(when)}</dd>"
        f"<dt>认证人</dt><dd>{esc(certification.actor)}</dd>"
        f'<dt>账本中的选票</dt><dd><span id="votes" data-count="{certification.votes}">'
        f"{number(certification.votes)}</span> 张（其中已作废 {number(certification.void)} 张）"
        "</dd>"
        f'<dt>导出文件的 SHA-256</dt><dd><code id="sha256">{esc(certification.export_sha256)}'
        f'</code><br><span class="hint">标签为 {esc(campaign.id)} 的导出文件应当与此完全一致；'
        '可以在<a href="/admin/export">导出</a>页核对。</span></dd>'
        "</dl>",
        f"<h2>获奖名单（前 {int(result.get('seats', 0))} 名）</h2>",
        _winners_table(list(result.get("winners", []))),
        f'<p class="hint">{esc(TIE_RULE_ZH)}</p>',
        '<p><a class="button secondary" href="/admin/audit?action=certify">查看审计记录</a> '
        '<a class="button secondary" href="/results">打开结果公布页</a></p>',
    ]
    return layout(campaign, "认证结果", "".join(parts), page="certify", viewer=viewer)
