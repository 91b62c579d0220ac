# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""导出, the auditors' export: operators only.

The page explains the file and asks for a label (the campaign id by default).
Exporting computes the file's SHA-256 and writes the audit row, then shows the
counts, the digest (compared with the certified one, for the default label)
and two downloads: the CSV (UTF-8 with a byte-order mark, CRLF: Excel and WPS
open it as it is) and its ``.sha256``. The download builds the file again: the
same ledger and label give the same bytes, so it is checked against the digest
shown, and a ledger changed in between (a void) is said, not served.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from votesvc.admin.html import Viewer, csrf_field, esc, layout, notice, number
from votesvc.campaign import Campaign
from votesvc.ledger.export import Digest
from votesvc.ledger.store import AuditEntry, Certification
from votesvc.ledger.times import zh_time

__all__ = ["LABEL_MAX", "export_done_page", "export_form_page", "file_name", "label_error"]

LABEL_MAX = 64
_SAFE = re.compile(r"[A-Za-z0-9_.-]{1,64}")

_COLUMNS = (
    ("vote_id", "选票编号（作废时可按编号作废）"),
    ("nominee_id", "候选人编号"),
    ("nominee_name", "候选人姓名"),
    ("trade", "工种"),
    ("accepted_at", "投票时间（活动所在时区，带时差，如 +08:00）"),
    ("phone_ref", "手机号的加密编号：同一标签的文件里，同一个手机号的编号相同，但无法还原出号码"),
    ("prefix_ref", "网段的加密编号：同一个单位、小区或运营商出口的网络编号相同，不含 IP 地址"),
    ("method", "验证方式：none 不验证，sms 短信验证码，partner:… 合作方 App"),
    ("void", "是否已作废（true 已作废，false 有效）"),
    ("void_reason", "作废原因"),
)


def file_name(campaign: Campaign, label: str) -> str:
    """The CSV's name: ``votes-<label>.csv`` when the label is plain ASCII."""
    return f"votes-{label}.csv" if _SAFE.fullmatch(label) else f"votes-{campaign.id}.csv"


def label_error(label: str) -> str | None:
    if not label.strip():
        return "请填写标签（不填时使用活动编号）。"
    if len(label) > LABEL_MAX:
        return f"标签最多 {LABEL_MAX} 个字符。"
    return None


def _recent(campaign: Campaign, exports: list[AuditEntry]) -> str:
    if not exports:
        return '<p class="muted">还没有导出过。</p>'
    rows = []
    for entry in reversed(exports):
        try:
            detail = json.loads(entry.detail)
        except ValueError:
            continue
        if not isinstance(detail, dict):
            continue
        label = "内部版" if detail.get("internal") else str(detail.get("label") or "")
        rows.append(
            f'<tr><td class="nowrap">{esc(zh_time(entry.at, campaign.timezone))}</td>'
            f"<td>{esc(entry.actor)}</td><td>{esc(label)}</td>"
            f'<td class="num">{number(int(detail.get("rows", 0)))}</td>'
            f'<td class="mono">{esc(detail.get("sha256", ""))}</td></tr>'
        )
    return (
        '<div class="table-wrap"><table id="exports"><thead><tr><th>时间</th><th>导出人</th>'
        '<th>标签</th><th class="num">行数</th><th>SHA-256</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div>"
    )


def export_form_page(
    campaign: Campaign,
    viewer: Viewer,
    exports: list[AuditEntry],
    certification: Certification | None,
    *,
    label: str | None = None,
    error: str | None = None,
) -> str:
    columns = "".join(f"<dt><code>{name}</code></dt><dd>{text}</dd>" for name, text in _COLUMNS)
    parts = []
    if error:
        parts.append(notice("error", esc(error), code="invalid_form"))
    parts += [
        "<p>导出账本中的全部选票（包括已作废的），一张选票一行，交给审计人员或媒体核对。"
        "文件是 CSV 表格，用 Excel 或 WPS 直接打开即可，中文不会乱码。同时提供它的 SHA-256 "
        "校验值：同一账本、同一标签，任何时候导出的文件都完全相同，校验值也相同。</p>",
        '<form method="post" action="/admin/export" class="panel" id="export">'
        f"{csrf_field(viewer.csrf)}"
        '<label for="label">标签</label>'
        f'<input type="text" id="label" name="label" maxlength="{LABEL_MAX}"'
        f' value="{esc(label if label is not None else campaign.id)}">'
        '<p class="hint">默认是活动编号。同一标签的文件之间，同一个手机号的加密编号相同；'
        "换一个标签，编号全都不同（例如给不同的审计方各用一个标签）。"
        "认证时记录的校验值用的是默认标签。</p>"
        '<button type="submit">生成导出文件</button></form>',
    ]
    if certification is not None:
        parts.append(
            notice(
                "info",
                f"结果已于 {esc(zh_time(certification.certified_at, campaign.timezone))} 认证，"
                f"当时记录的导出文件 SHA-256 是 <code>{esc(certification.export_sha256)}</code>"
                f"（标签 {esc(campaign.id)}）。",
                code="certified",
            )
        )
    parts += [
        "<h2>文件的各列</h2>",
        f'<dl class="facts columns">{columns}</dl>',
        "<h2>最近的导出</h2>",
        _recent(campaign, exports),
    ]
    code = "invalid_form" if error else None
    return layout(campaign, "导出", "".join(parts), page="export", viewer=viewer, code=code)


def export_done_page(
    campaign: Campaign,
    viewer: Viewer,
    done: Digest,
    label: str,
    certification: Certification | None,
) -> str:
    query = urlencode({"label": label, "sha256": done.sha256})
    name = file_name(campaign, label)
    parts = [
        notice(
            "ok",
            f'<strong>导出文件已生成：共 <span id="rows" data-count="{done.rows}">'
            f"{number(done.rows)}</span> 张选票（其中已作废 {number(done.void)} 张）。</strong>"
            '这次导出已记入<a href="/admin/audit?action=export">审计日志</a>。',
            code="exported",
        ),
        '<dl class="facts">'
        f"<dt>文件名</dt><dd>{esc(name)}</dd>"
        f"<dt>标签</dt><dd>{esc(label)}</dd>"
        f'<dt>SHA-256</dt><dd><code id="sha256">{esc(done.sha256)}</code></dd></dl>',
    ]
    if certification is not None and label == campaign.id:
        if certification.export_sha256 == done.sha256:
            parts.append(
                notice("ok", "与认证时记录的校验值一致：账本在认证之后没有变化。", code="matches")
            )
        else:
            parts.append(
                notice(
                    "error",
                    "与认证时记录的校验值不一致：账本在认证之后有了变化，请立即联系技术人员。",
                    code="differs",
                )
            )
    parts += [
        f'<p><a class="button" id="download" href="/admin/export/file?{esc(query)}"'
        f' download="{esc(name)}">下载 CSV 文件</a> '
        f'<a class="button secondary" id="download-sha256" href="/admin/export/sha256?'
        f'{esc(query)}" download="{esc(name)}.sha256">下载校验文件（.sha256）</a></p>',
        '<p class="hint">在电脑上核对：Linux 或 macOS 把两个文件放在同一目录，运行 '
        f"<code>sha256sum -c {esc(name)}.sha256</code>；Windows 运行 "
        f"<code>certutil -hashfile {esc(name)} SHA256</code>，与上面的值比较。</p>",
        '<p><a class="button secondary" href="/admin/export">返回导出</a></p>',
    ]
    return layout(campaign, "导出：已生成", "".join(parts), page="export", viewer=viewer)
