# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""审计日志, the audit log: every void, certification, restore, export, sign-in and
account change.

Read from the ledger's ``audit_log`` (the command line writes the same rows),
newest first, filtered by action, person and time (in the campaign's zone).
Each row's detail is told in words; an action this version does not know is
shown as stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from votesvc.admin.html import Viewer, esc, layout, notice, number
from votesvc.campaign import Campaign
from votesvc.ledger.store import AuditEntry
from votesvc.ledger.suspects import TITLES_ZH
from votesvc.ledger.times import zh_time

__all__ = ["ACTIONS", "AuditFilter", "audit_page", "parse_filter"]

SHOWN = 500  # rows on one page, the newest
ACTIONS = {
    "void": "作废选票",
    "restore": "从账本恢复实时计数",
    "export": "导出账本",
    "certify": "确认最终结果",
    "signin": "登录",
    "signin_failed": "登录失败（密码不对）",
    "signin_locked": "登录被暂时锁定",
    "signin_refused": "登录被拒绝（账号已停用）",
    "signout": "退出登录",
    "add_user": "新建后台账号",
    "disable_user": "停用后台账号",
    "enable_user": "启用后台账号",
    "passwd": "修改后台密码",
}


class AuditFilter:
    """What the audit page's form asks for (times as epoch ms)."""

    def __init__(
        self,
        action: str | None = None,
        actor: str | None = None,
        since: int | None = None,
        until: int | None = None,
        texts: Mapping[str, str] | None = None,
    ) -> None:
        self.action = action
        self.actor = actor
        self.since = since
        self.until = until
        self.texts = dict(texts or {})  # the form's fields as typed


def parse_filter(query: Mapping[str, str], campaign: Campaign) -> tuple[AuditFilter, str | None]:
    """The filter in ``query``, and what was wrong with it (None: nothing)."""
    texts = {key: query.get(key, "").strip() for key in ("action", "actor", "since", "until")}
    error = None
    moments: dict[str, int | None] = {}
    for key, label in (("since", "开始时间"), ("until", "结束时间")):
        moments[key] = None
        if texts[key]:
            try:
                moment = datetime.fromisoformat(texts[key])
            except ValueError:
                error = f"{label}的格式不对，请用“年-月-日 时:分”。"
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=campaign.timezone)
            moments[key] = int(moment.timestamp() * 1000)
    return (
        AuditFilter(
            texts["action"] or None,
            texts["actor"][:200] or None,
            moments["since"],
            moments["until"],
            texts,
        ),
        error,
    )


def _name(campaign: Campaign, nominee_id: str) -> str:
    nominee = campaign.nominee(nominee_id)
    return nominee.name if nominee else nominee_id


def _void_detail(detail: dict[str, Any], campaign: Campaign) -> str:
    tz = campaign.timezone
    if "phone_hash" in detail:
        how = "按手机号（只保存加密后的号码）"
    elif detail.get("nominee"):
        how = f"按候选人 {_name(campaign, str(detail['nominee']))}"
        if detail.get("prefixes"):
            how += f"、{number(len(detail['prefixes']))} 个网段"
    elif detail.get("prefixes"):
        how = f"按 {number(len(detail['prefixes']))} 个网段"
    else:
        how = f"按 {number(len(detail.get('vote_ids', [])))} 个选票编号"
    signal = TITLES_ZH.get(str(detail.get("signal")))
    if signal is not None:
        how = f"可疑活动“{signal}”，{how}"
    since, until = detail.get("since"), detail.get("until")
    if since is not None or until is not None:
        start = "最早" if since is None else zh_time(int(since), tz)
        end = "现在" if until is None else zh_time(int(until), tz)
        how += f"，时间从 {start} 到 {end}"
    per = detail.get("by_nominee") or {}
    losses = "、".join(
        f"{_name(campaign, nid)} {number(int(n))} 张"
        for nid, n in sorted(per.items(), key=lambda item: -int(item[1]))
    )
    text = f"作废 {number(int(detail.get('count', 0)))} 张（{how}）"
    if losses:
        text += f"：{losses}"
    if detail.get("via") == "command line":
        text += "。在命令行上操作"
    return text


def _certify_detail(detail: dict[str, Any]) -> str:
    """The certification: the counts, the digest and the award table, in words."""
    award = detail.get("award") or []
    places = [int(row.get("place", 0)) for row in award]
    ranking = "；".join(
        f"{'并列' if places.count(int(row.get('place', 0))) > 1 else ''}第{row.get('place')}名 "
        f"{row.get('name')}（{row.get('id')}）{number(int(row.get('votes', 0)))} 票"
        f"{'，获奖' if row.get('awarded') else ''}"
        for row in award
    )
    text = (
        f"账本共 {number(int(detail.get('votes', 0)))} 张选票（其中作废 "
        f"{number(int(detail.get('void', 0)))} 张），投票时间内的有效票 "
        f"{number(int(detail.get('valid_in_window', 0)))} 张；前 {detail.get('seats')} 名获奖；"
        f"导出文件（标签 {detail.get('label')}）SHA-256 {detail.get('sha256')}。排名：{ranking}"
    )
    if detail.get("via") == "command line":
        text += "。在命令行上操作"
    return text


def _detail(entry: AuditEntry, campaign: Campaign) -> str:
    """A row's detail in words."""
    try:
        detail = json.loads(entry.detail) if entry.detail else {}
    except ValueError:
        detail = None
    if not isinstance(detail, dict):
        return entry.detail
    action = entry.action
    if action == "void":
        return _void_detail(detail, campaign)
    if action == "export":
        kind = (
            "内部版（含账本中的加密手机号，只能在单位内部使用）"
            if detail.get("internal")
            else f"对外版（标签 {detail.get('label')}）"
        )
        where = "，在后台网页上" if detail.get("via") == "console" else ""
        return (
            f"文件 {detail.get('file')}，{number(int(detail.get('rows', 0)))} 行"
            f"（其中作废 {number(int(detail.get('void', 0)))} 行），{kind}，"
            f"SHA-256 {detail.get('sha256', '')}{where}"
        )
    if action == "certify":
        return _certify_detail(detail)
    if action == "restore":
        return (
            f"从账本恢复有效票 {number(int(detail.get('valid_votes', 0)))} 张，"
            f"今天的手机记录 {number(int(detail.get('phones_today', 0)))} 个，"
            f"另计入尚未入账的 {number(int(detail.get('replayed', 0)))} 张"
        )
    if action == "signin_locked" and detail.get("until") is not None:
        return (
            "同一网络连续 5 次密码错误，该账号从这个网络暂停登录，"
            f"到 {zh_time(int(detail['until']), campaign.timezone)}"
        )
    if action in ("add_user", "disable_user", "enable_user", "passwd"):
        role = {"viewer": "查看账号", "operator": "操作账号"}.get(str(detail.get("role")), "")
        text = f"账号 {detail.get('account', '')}"
        if role:
            text += f"（{role}）"
        if detail.get("sessions_ended"):
            text += f"，结束了它的 {number(int(detail['sessions_ended']))} 个登录会话"
        return text
    if action.startswith("sign"):
        return "在后台网页上" if detail.get("via") == "console" else ""
    return entry.detail


def _filter_form(campaign: Campaign, chosen: AuditFilter) -> str:
    texts = chosen.texts
    options = ['<option value="">全部</option>']
    for action, label in ACTIONS.items():
        selected = " selected" if texts.get("action") == action else ""
        options.append(f'<option value="{esc(action)}"{selected}>{esc(label)}</option>')
    return (
        '<form method="get" action="/admin/audit" class="panel" id="filter">'
        '<div class="row">'
        '<div><label for="action">操作</label><select id="action" name="action">'
        + "".join(options)
        + "</select></div>"
        '<div><label for="actor">操作人</label><input type="text" id="actor" name="actor"'
        f' value="{esc(texts.get("actor", ""))}"'
        ' placeholder="后台账号名，或命令行的 用户@主机"></div>'
        '<div><label for="since">从</label><input type="datetime-local" step="1" id="since"'
        f' name="since" value="{esc(texts.get("since", ""))}"></div>'
        '<div><label for="until">到（不含）</label><input type="datetime-local" step="1"'
        f' id="until" name="until" value="{esc(texts.get("until", ""))}"></div>'
        "</div>"
        '<button type="submit">筛选</button> '
        '<a class="button secondary" href="/admin/audit">清除筛选</a></form>'
    )


def audit_page(
    campaign: Campaign,
    entries: list[AuditEntry],
    chosen: AuditFilter,
    viewer: Viewer,
    *,
    error: str | None = None,
) -> str:
    tz = campaign.timezone
    rows = []
    for entry in reversed(entries):  # newest first
        label = ACTIONS.get(entry.action, entry.action)
        rows.append(
            f'<tr data-action="{esc(entry.action)}" data-actor="{esc(entry.actor)}">'
            f'<td class="nowrap">{esc(zh_time(entry.at, tz))}</td>'
            f'<td class="nowrap">{esc(label)}</td>'
            f"<td>{esc(entry.actor)}</td><td>{esc(entry.reason) or '—'}</td>"
            f"<td>{esc(_detail(entry, campaign)) or '—'}</td></tr>"
        )
    parts = [
        '<p class="muted">作废、认证结果、恢复、导出、登录和账号变动都会记在这里，不能修改或删除。'
        "时间按活动所在时区显示。</p>",
        _filter_form(campaign, chosen),
    ]
    if error:
        parts.append(notice("error", esc(error), code="invalid_form"))
    if not rows:
        parts.append(notice("info", "没有符合条件的记录。", code="empty"))
    else:
        more = f"（只列出最近的 {SHOWN} 条）" if len(entries) >= SHOWN else ""
        parts.append(
            f'<p id="shown" data-count="{len(rows)}">'
            f"共 {number(len(rows))} 条，最新的在前{more}。</p>"
            '<div class="table-wrap"><table id="audit"><thead><tr><th>时间</th><th>操作</th>'
            "<th>操作人</th><th>原因</th><th>内容</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></div>"
        )
    return layout(campaign, "审计日志", "".join(parts), page="audit", viewer=viewer)
