# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""作废选票, voiding votes: the choice, the preview, the outcome.

How the forms name votes is :mod:`votesvc.admin.void_choice`'s. The preview
freezes what it found (``VoidPreview.frozen``); the confirm form carries that
digest back, with the selection (a phone only as its hash).
"""

from __future__ import annotations

from collections.abc import Mapping

from votesvc.admin.html import Viewer, csrf_field, esc, hidden, layout, notice, number
from votesvc.admin.void_choice import Chosen, describe
from votesvc.campaign import Campaign
from votesvc.ledger.store import LedgerVote
from votesvc.ledger.times import zh_time
from votesvc.ledger.void import CutTie, VoidPreview

__all__ = ["certified_notice", "done_page", "preview_page", "void_form_page"]

SHOWN_VOTES = 50  # votes listed one by one on a preview


def _name(campaign: Campaign, nominee_id: str) -> str:
    nominee = campaign.nominee(nominee_id)
    return nominee.name if nominee else nominee_id


def _names(campaign: Campaign, ids: list[str] | tuple[str, ...]) -> str:
    return "、".join(esc(_name(campaign, nid)) for nid in ids)


def _tie(campaign: Campaign, tie: CutTie | None) -> str:
    if tie is None:
        return "获奖线上没有并列"
    everyone = (*tie.above, *tie.below)
    return f"{_names(campaign, everyone)} 同为 {number(tie.votes)} 票，并列在获奖线上"


def _effect(campaign: Campaign, preview: VoidPreview) -> str:
    """Whether the award's top places or a tie across its line would change."""
    top = preview.top
    if not preview.changes_award:
        return notice(
            "info",
            f"作废后，前 {top} 名获奖名单不变，获奖线上的并列情况也不变。",
            code="award_unchanged",
        )
    lines = []
    if preview.leaving:
        lines.append(
            "<strong>获奖名单会改变</strong>："
            f"{_names(campaign, preview.leaving)} 将跌出前 {top} 名，"
            f"{_names(campaign, preview.entering)} 将进入前 {top} 名。"
        )
    if preview.tie_before != preview.tie_after:
        lines.append(
            "<strong>获奖线上的并列情况会改变</strong>："
            f"作废前，{_tie(campaign, preview.tie_before)}；"
            f"作废后，{_tie(campaign, preview.tie_after)}。"
        )
    return notice("warn", "<br>".join(lines), code="award_changes")


def _by_nominee_table(campaign: Campaign, preview: VoidPreview) -> str:
    now = {p.nominee.id: p.votes for p in preview.before}
    rows = "".join(
        f'<tr data-id="{esc(nid)}" data-count="{count}"><td>{esc(_name(campaign, nid))}</td>'
        f'<td class="num">{number(now.get(nid, 0))}</td><td class="num">−{number(count)}</td>'
        f'<td class="num">{number(max(0, now.get(nid, 0) - count))}</td></tr>'
        for nid, count in preview.by_nominee.items()
    )
    return (
        '<div class="table-wrap"><table id="by-nominee"><thead><tr><th>候选人</th>'
        '<th class="num">现在的有效票</th><th class="num">将作废</th>'
        '<th class="num">作废后</th></tr></thead><tbody>' + rows + "</tbody></table></div>"
    )


def _votes_table(campaign: Campaign, votes: list[LedgerVote]) -> str:
    tz = campaign.timezone
    rows = "".join(
        f'<tr><td class="mono">{esc(v.vote_id)}</td><td>{esc(_name(campaign, v.nominee))}</td>'
        f'<td class="nowrap">{esc(zh_time(v.accepted_at, tz))}</td></tr>'
        for v in votes[:SHOWN_VOTES]
    )
    more = (
        f'<p class="hint">只列出前 {SHOWN_VOTES} 张，共 {number(len(votes))} 张。</p>'
        if len(votes) > SHOWN_VOTES
        else ""
    )
    return (
        "<h2>这些选票</h2>"
        '<div class="table-wrap"><table><thead><tr><th>选票编号</th><th>候选人</th>'
        "<th>投票时间</th></tr></thead><tbody>" + rows + "</tbody></table></div>" + more
    )


def _back(chosen: Chosen, to_suspects: str, to_void: str) -> str:
    """The way back: to the suspicious-activity page for one of its findings."""
    if chosen.way == "suspect":
        return f'<a class="button secondary" href="/admin/suspects">{to_suspects}</a>'
    return f'<a class="button secondary" href="/admin/void">{to_void}</a>'


def _nominee_options(campaign: Campaign, chosen: str) -> str:
    options = ['<option value="">— 请选择 —</option>']
    for nominee in campaign.nominees:
        selected = " selected" if nominee.id == chosen else ""
        options.append(
            f'<option value="{esc(nominee.id)}"{selected}>{esc(nominee.name)}'
            f"（{esc(nominee.trade)}，{esc(nominee.id)}）</option>"
        )
    return "".join(options)


def _time_fields(form: Mapping[str, str], way: str) -> str:
    return (
        '<div class="row">'
        f'<div><label for="{way}-since">从（可不填）</label>'
        f'<input type="datetime-local" step="1" id="{way}-since" name="since"'
        f' value="{esc(form.get("since", "") if form.get("way") == way else "")}"></div>'
        f'<div><label for="{way}-until">到（可不填，不含此刻）</label>'
        f'<input type="datetime-local" step="1" id="{way}-until" name="until"'
        f' value="{esc(form.get("until", "") if form.get("way") == way else "")}"></div>'
        "</div>"
    )


def certified_notice(campaign: Campaign, certified_at: int) -> str:
    """Why nothing can be voided any more (HTML)."""
    return notice(
        "info",
        "<strong>评选结果已于 "
        f"{esc(zh_time(certified_at, campaign.timezone))} 认证并公布，选票已经冻结，"
        "不能再作废。</strong>"
        '公布的结果见<a href="/results">结果公布页</a>；认证的内容记在'
        '<a href="/admin/audit?action=certify">审计日志</a>里。',
        code="result_certified",
    )


def void_form_page(
    campaign: Campaign,
    viewer: Viewer,
    *,
    form: Mapping[str, str] | None = None,
    error: str | None = None,
    certified_at: int | None = None,
) -> str:
    """The three ways to choose votes, each its own form (none once the result is
    certified: ``certified_at``)."""
    if certified_at is not None:
        return layout(
            campaign,
            "作废选票",
            certified_notice(campaign, certified_at),
            page="void",
            viewer=viewer,
            code="result_certified",
        )
    form = form or {}
    zone = "北京时间" if "（北京时间）" in zh_time(0, campaign.timezone) else campaign.timezone.key
    intro = (
        "<p>作废分两步：先<strong>预览</strong>将要作废的选票（这一步不会改变任何数据），"
        "核对无误后填写原因再<strong>确认作废</strong>。作废的选票不再计入票数，"
        "每次作废都会记入审计日志。</p>"
        f'<p class="hint">时间按{esc(zone)}填写。手机号只用来查找选票，不会被保存。</p>'
    )
    parts = [intro]
    if error:
        parts.append(notice("error", error, code="invalid_form"))

    def section(way: str, legend: str, fields: str) -> str:
        return (
            f'<form method="post" action="/admin/void/preview" class="panel" id="by-{way}">'
            f"<fieldset><legend>{legend}</legend>{csrf_field(viewer.csrf)}{hidden('way', way)}"
            f"{fields}{_time_fields(form, way)}"
            '<button type="submit">预览（不会作废）</button></fieldset></form>'
        )

    ids = form.get("ids", "") if form.get("way") == "ids" else ""
    parts.append(
        section(
            "ids",
            "按选票编号",
            '<label for="ids">选票编号（每行一个，可从导出文件中复制）</label>'
            f'<textarea id="ids" name="ids" spellcheck="false">{esc(ids)}</textarea>',
        )
    )
    parts.append(
        section(
            "phone",
            "按手机号",
            '<label for="phone">手机号</label>'
            '<input type="tel" id="phone" name="phone" inputmode="numeric" autocomplete="off"'
            ' placeholder="例如 13800138000">',
        )
    )
    nominee = form.get("nominee", "") if form.get("way") == "nominee" else ""
    parts.append(
        section(
            "nominee",
            "按候选人",
            '<label for="nominee">候选人</label>'
            f'<select id="nominee" name="nominee">{_nominee_options(campaign, nominee)}</select>',
        )
    )
    return layout(
        campaign,
        "作废选票",
        "".join(parts),
        page="void",
        viewer=viewer,
        code="invalid_form" if error else None,
    )


def _confirm_form(chosen: Chosen, preview: VoidPreview, viewer: Viewer, reason: str) -> str:
    selection = chosen.selection
    fields = [
        csrf_field(viewer.csrf),
        hidden("way", chosen.way),
        hidden("frozen", preview.frozen),
        hidden("since_ms", "" if selection.since is None else selection.since),
        hidden("until_ms", "" if selection.until is None else selection.until),
    ]
    if chosen.way == "suspect":
        fields += [
            hidden("signal", chosen.signal),
            hidden("ids", " ".join(selection.vote_ids)),
            hidden("prefixes", " ".join(selection.prefixes)),
            hidden("nominee", selection.nominee or ""),
        ]
    elif chosen.way == "ids":
        fields.append(hidden("ids", " ".join(selection.vote_ids)))
    elif chosen.way == "phone":
        fields += [
            hidden("phone_hash", selection.phone_hash or ""),
            hidden("phone_shown", chosen.phone_shown),
        ]
    else:
        fields.append(hidden("nominee", selection.nominee or ""))
    count = number(len(preview.votes))
    return (
        '<form method="post" action="/admin/void/confirm" class="panel" id="confirm">'
        + "".join(fields)
        + '<label for="reason">作废原因（必填，会记入审计日志）</label>'
        f'<textarea id="reason" name="reason" required maxlength="500">{esc(reason)}</textarea>'
        f'<button type="submit" class="danger">确认作废这 {count} 张选票</button> '
        f"{_back(chosen, '取消，回到可疑活动', '取消，重新选择')}</form>"
    )


def preview_page(
    campaign: Campaign,
    chosen: Chosen,
    preview: VoidPreview,
    viewer: Viewer,
    *,
    changed: bool = False,
    reason: str = "",
    error: str | None = None,
) -> str:
    """The preview, with its confirm form; ``changed``: a confirm found other votes."""
    parts = []
    code = None
    if changed:
        code = "selection_changed"
        parts.append(
            notice(
                "error",
                "<strong>这次没有作废任何选票。</strong>在您预览之后，符合条件的选票有了变化"
                "（例如其中有选票已被别人作废，或有新的选票进来）。下面是最新的预览，"
                "请重新核对后再确认。",
                code=code,
            )
        )
    if error:
        code = code or "invalid_form"
        parts.append(notice("error", error, code="invalid_form"))
    count = len(preview.votes)
    parts.append(
        '<dl class="facts">'
        f"<dt>选择条件</dt><dd>{describe(chosen, campaign)}</dd>"
        f'<dt>有效选票</dt><dd><strong id="count" data-count="{count}">{number(count)}</strong> 张'
        "（已作废的不算）</dd></dl>"
    )
    if not count:
        parts.append(
            notice("info", "没有符合条件的有效选票，不需要作废。", code="nothing")
            + f"<p>{_back(chosen, '回到可疑活动', '重新选择')}</p>"
        )
    else:
        parts += [
            notice(
                "warn",
                "这是预览，<strong>还没有作废</strong>。"
                f"确认后，下面这 {number(count)} 张选票将被作废。",
            ),
            "<h2>各候选人将减少的票数</h2>",
            _by_nominee_table(campaign, preview),
            "<h2>对评奖结果的影响</h2>",
            _effect(campaign, preview),
            _votes_table(campaign, preview.votes),
            "<h2>确认作废</h2>",
            _confirm_form(chosen, preview, viewer, reason),
        ]
    return layout(campaign, "作废选票：预览", "".join(parts), page="void", viewer=viewer, code=code)


def done_page(
    campaign: Campaign,
    chosen: Chosen,
    voided: list[LedgerVote],
    viewer: Viewer,
    *,
    live_updated: bool,
) -> str:
    counts: dict[str, int] = {}
    for vote in voided:
        counts[vote.nominee] = counts.get(vote.nominee, 0) + 1
    rows = "".join(
        f'<tr data-id="{esc(nid)}"><td>{esc(_name(campaign, nid))}</td>'
        f'<td class="num">{number(count)}</td></tr>'
        for nid, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )
    parts = [
        notice(
            "ok",
            f'<strong>已作废 <span id="voided" data-count="{len(voided)}">'
            f"{number(len(voided))}</span> 张选票。</strong>"
            '这次操作已记入<a href="/admin/audit?action=void">审计日志</a>。',
            code="voided",
        ),
        f"<p>选择条件：{describe(chosen, campaign)}</p>",
        '<div class="table-wrap"><table><thead><tr><th>候选人</th><th class="num">作废票数</th>'
        "</tr></thead><tbody>" + rows + "</tbody></table></div>",
    ]
    if live_updated:
        parts.append('<p class="muted">实时票数和评奖结果已经相应减少。</p>')
    else:
        parts.append(
            notice(
                "error",
                "账本中已经作废，但实时票数没能同步减少（Redis 暂时无法连接）。"
                "请联系技术人员运行 votesvc restore，让实时票数与账本一致。",
                code="live_counters_not_updated",
            )
        )
    parts.append(
        '<p><a class="button secondary" href="/admin/award">查看评奖结果</a> '
        f"{_back(chosen, '回到可疑活动', '继续作废其他选票')}</p>"
    )
    return layout(campaign, "作废选票：已完成", "".join(parts), page="void", viewer=viewer)
