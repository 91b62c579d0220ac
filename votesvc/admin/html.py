# ruff: noqa: RUF001  (the pages speak Chinese: full-width punctuation)
"""The console's HTML: one layout, escaping, and the small pieces every page uses.

Pages are built on the server as plain strings (no template engine, no
script): every value from outside goes through :func:`esc`. The stylesheet is
``votesvc/admin/static/admin.css``, served under ``/admin/static/``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from votesvc.admin.accounts import OPERATOR
from votesvc.admin.csrf import FIELD
from votesvc.campaign import Campaign

__all__ = [
    "NAV",
    "Viewer",
    "csrf_field",
    "esc",
    "hidden",
    "layout",
    "notice",
    "number",
    "role_zh",
]

# (path under /admin, label, operators only)
NAV = (
    ("/overview", "总览", False),
    ("/award", "评奖结果", False),
    ("/suspects", "可疑活动", False),
    ("/void", "作废选票", True),
    ("/certify", "认证结果", True),
    ("/export", "导出", True),
    ("/audit", "审计日志", False),
)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looks at the page: their name, role and the CSRF token of their session."""

    name: str
    role: str
    csrf: str

    @property
    def operator(self) -> bool:
        return self.role == OPERATOR


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def number(value: int) -> str:
    """A count with thousands separators: 12,345."""
    return f"{value:,}"


def role_zh(role: str) -> str:
    return "操作账号（可作废、认证、导出）" if role == OPERATOR else "查看账号（只能查看）"


def hidden(name: str, value: object) -> str:
    return f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'


def csrf_field(token: str) -> str:
    return hidden(FIELD, token)


def notice(kind: str, text: str, *, code: str | None = None) -> str:
    """A boxed message: ``ok``, ``warn``, ``error`` or ``info`` (``text`` is HTML)."""
    role = "alert" if kind in ("error", "warn") else "status"
    data = f' data-code="{esc(code)}"' if code else ""
    return f'<div class="notice notice-{esc(kind)}" role="{role}"{data}>{text}</div>'


def layout(
    campaign: Campaign,
    title: str,
    body: str,
    *,
    page: str,
    viewer: Viewer | None,
    code: str | None = None,
) -> str:
    """A whole page: the header (campaign, menu, who is signed in), then ``body``.

    ``code``: a stable code for what went wrong (``csrf_failed``...), kept in an
    attribute for scripts and tests; the page itself says it in words.
    """
    data_code = f' data-code="{esc(code)}"' if code else ""
    header = ""
    if viewer is not None:
        links = []
        for path, label, operators in NAV:
            if operators and not viewer.operator:
                continue
            current = ' aria-current="page"' if path == "/" + page else ""
            links.append(f'<a href="/admin{path}"{current}>{label}</a>')
        header = (
            '<nav class="menu" aria-label="后台菜单">' + "".join(links) + "</nav>"
            '<div class="who">'
            f'<span class="who-name">{esc(viewer.name)}</span>'
            f'<span class="who-role">{role_zh(viewer.role)}</span>'
            '<form method="post" action="/admin/logout" class="inline">'
            f'{csrf_field(viewer.csrf)}<button type="submit" class="link">退出登录</button>'
            "</form></div>"
        )
    return (
        "<!doctype html>\n"
        '<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)} · 组织者后台</title>"
        '<link rel="stylesheet" href="/admin/static/admin.css">'
        f'</head><body data-page="{esc(page)}"{data_code}>'
        '<header class="bar"><div class="brand">'
        f'<span class="campaign">{esc(campaign.title)}</span>'
        '<span class="console">组织者后台</span></div>'
        f"{header}</header>"
        f'<main id="main"><h1>{esc(title)}</h1>{body}</main>'
        "</body></html>\n"
    )
