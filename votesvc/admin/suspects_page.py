# ruff: noqa: RUF001, RUF003  (the page speaks Chinese: full-width punctuation)
"""可疑活动, suspicious activity: the four signals' findings, from the ledger.

Each signal is defined in one sentence above the table, with the campaign's
``[suspects]`` numbers. Each finding is a row with its counts and, for an
operator while the result is not certified, a button to the void preview of
exactly its votes (a form: the preview changes nothing, and the confirm that
follows needs a reason). Networks are shown only by the first digits of their
keyed hash, as the export's ``prefix_ref`` under the default label starts.
"""

from __future__ import annotations

from votesvc.admin.html import Viewer, csrf_field, esc, hidden, layout, notice, number
from votesvc.admin.void_page import certified_notice
from votesvc.campaign import Campaign
from votesvc.ledger.export import Refs
from votesvc.ledger.suspects import TITLES_ZH, Finding, signals
from votesvc.ledger.times import zh_time

__all__ = ["suspects_page"]


def _name(campaign: Campaign, nominee_id: str) -> str:
    nominee = campaign.nominee(nominee_id)
    return nominee.name if nominee else nominee_id


def _until(finding: Finding, campaign: Campaign) -> str:
    """The last vote's time: only ``20:15:03`` on the day of the first, which says the rest."""
    first, last = (zh_time(ms, campaign.timezone) for ms in (finding.first, finding.last))
    return last[11:19] if first[:10] == last[:10] else last


def _what(finding: Finding, campaign: Campaign, refs: Refs) -> str:
    """The finding's counts in words (HTML)."""
    s = campaign.suspects
    if finding.signal == "prefix_votes_per_hour":
        start = (finding.window or (finding.first, finding.last))[0]
        # "2026-12-01 20:00 至 21:00（北京时间）", from two zh_time strings
        hour = zh_time(start, campaign.timezone)
        next_hour = zh_time(start + 3_600_000, campaign.timezone)
        return (
            f'网段 <span class="mono">{esc(refs(finding.prefix_hash or "")[:8])}</span> 在 '
            f"{esc(hour[:16])} 至 {esc(next_hour[11:16] + hour[19:])} 这一小时内投了 "
            f"<strong>{number(finding.votes)}</strong> 票（超过 {number(s.prefix_votes_per_hour)} "
            "票即列出）"
        )
    if finding.signal == "nominee_spike":
        start, end = finding.window or (finding.first, finding.first + 60_000)
        minutes = (end - start) // 60_000
        span = "一分钟" if minutes == 1 else f"连续 {minutes} 分钟"
        return (
            f"{span}内得到 <strong>{number(finding.votes)}</strong> 票；此前一小时每分钟得票的"
            f"中位数是 {finding.baseline or 0:g} 票"
        )
    if finding.signal == "top_prefix_share":
        total = finding.total or finding.votes
        share = finding.votes / total
        return (
            f"共得 {number(total)} 票，其中 <strong>{number(finding.votes)}</strong> 票"
            f"（{share:.0%}）来自给他投票最多的 {finding.prefixes or 0} 个网段"
        )
    names = " → ".join(esc(_name(campaign, nid)) for nid in finding.sequence)
    return (
        f"<strong>{number(finding.phones or 0)}</strong> 个手机号依次投给 {names}，"
        f"共 {number(finding.votes)} 票"
    )


def _preview_button(finding: Finding, viewer: Viewer) -> str:
    """The form that opens the void preview of exactly the finding's votes."""
    selection = finding.selection
    fields = [
        csrf_field(viewer.csrf),
        hidden("way", "suspect"),
        hidden("signal", finding.signal),
        hidden("since_ms", "" if selection.since is None else selection.since),
        hidden("until_ms", "" if selection.until is None else selection.until),
        hidden("nominee", selection.nominee or ""),
        hidden("prefixes", " ".join(selection.prefixes)),
        hidden("ids", " ".join(selection.vote_ids)),
    ]
    return (
        '<form method="post" action="/admin/void/preview" class="inline preview">'
        + "".join(fields)
        + '<button type="submit" class="secondary small">预览作废</button></form>'
    )


def suspects_page(
    campaign: Campaign,
    findings: list[Finding],
    refs: Refs,
    viewer: Viewer,
    *,
    now_ms: int,
    certified_at: int | None,
) -> str:
    tz = campaign.timezone
    parts = [
        '<p class="muted">根据账本中的有效选票（已作废的不算）自动找出的可疑投票，供核查参考：'
        "是否作废由您判断。数据时间："
        f'{esc(zh_time(now_ms, tz))}。<a href="/admin/suspects">刷新</a></p>',
        '<h2>四种信号</h2><dl class="signals">',
    ]
    for signal in signals(campaign.suspects):
        parts.append(
            f'<dt id="signal-{esc(signal.name)}">{esc(TITLES_ZH[signal.name])}</dt>'
            f"<dd>{esc(signal.zh)}</dd>"
        )
    parts.append(
        "</dl>"
        '<p class="hint">“网段”指同一个单位、小区或运营商出口的网络（IPv4 地址的前三段，'
        "IPv6 的前 48 位），只保存加密后的编号，不保存 IP 地址；表中的网段编号与导出文件"
        "prefix_ref 列的开头相同。阈值在活动配置文件的 [suspects] 中设置。</p>"
    )
    if certified_at is not None:
        parts.append(certified_notice(campaign, certified_at))
    parts.append("<h2>发现的可疑活动</h2>")
    if not findings:
        parts.append(notice("ok", "没有发现可疑活动。", code="none"))
        return layout(campaign, "可疑活动", "".join(parts), page="suspects", viewer=viewer)
    can_void = viewer.operator and certified_at is None
    rows = []
    for finding in findings:
        nominee = esc(_name(campaign, finding.nominee)) if finding.nominee is not None else "—"
        when = (
            f'<span class="nowrap">{esc(zh_time(finding.first, tz))}</span> 至 '
            f'<span class="nowrap">{esc(_until(finding, campaign))}</span>'
        )
        action = _preview_button(finding, viewer) if can_void else "—"
        rows.append(
            f'<tr data-signal="{esc(finding.signal)}" data-votes="{finding.votes}"'
            f' data-nominee="{esc(finding.nominee or "")}">'
            f'<td class="nowrap">{esc(TITLES_ZH[finding.signal])}</td>'
            f'<td class="nowrap">{nominee}</td>'
            f'<td class="num">{number(finding.votes)}</td>'
            f"<td>{when}</td><td>{_what(finding, campaign, refs)}</td>"
            f"<td>{action}</td></tr>"
        )
    parts.append(
        f'<p id="found" data-count="{len(findings)}">共 {number(len(findings))} 条，'
        "按第一张选票的时间排列。</p>"
        '<div class="table-wrap"><table id="suspects"><thead><tr><th>信号</th><th>候选人</th>'
        '<th class="num">票数</th><th>时间</th><th>说明</th><th>操作</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div>"
    )
    if can_void:
        parts.append(
            '<p class="hint">“预览作废”只列出这一条涉及的选票和作废后的影响，不会改变任何数据；'
            "确认作废时需要填写原因，并记入审计日志。</p>"
        )
    elif not viewer.operator:
        parts.append('<p class="hint">作废选票需要操作账号。</p>')
    return layout(campaign, "可疑活动", "".join(parts), page="suspects", viewer=viewer)
