# ruff: noqa: RUF001  (the page speaks Chinese: full-width punctuation)
"""登录, the sign-in page, and every message it can show."""

from __future__ import annotations

from votesvc.admin.html import csrf_field, esc, layout, notice
from votesvc.admin.lockout import LOCK_MS, MAX_WRONG
from votesvc.admin.sessions import IDLE_MS, LONGEST_MS
from votesvc.campaign import Campaign
from votesvc.ledger.times import zh_time

__all__ = ["MESSAGES", "locked_message", "signin_page"]

# code -> (kind, text): what the page says above the form
MESSAGES = {
    "expired": (
        "info",
        f"登录已过期（{IDLE_MS // 60000} 分钟没有操作，或已登录满 {LONGEST_MS // 3600000} 小时），"
        "请重新登录。",
    ),
    "signed_out": ("ok", "您已退出登录。"),
    "wrong": ("error", "账号或密码不对，请重新输入。注意区分大小写。"),
    "disabled": ("error", "这个账号已经停用。如需继续使用，请联系技术人员。"),
    "csrf_failed": ("error", "登录页面已过期或来源不明，这次没有登录。请重新输入账号和密码。"),
}


def locked_message(until_ms: int, campaign: Campaign) -> str:
    return (
        f"这个账号在您所在的网络已连续输错 {MAX_WRONG} 次密码，暂停登录到 "
        f"{zh_time(until_ms, campaign.timezone)}。请到时再试，或请同事换一个网络登录；"
        "如果不是您本人输错的，请告诉技术人员。"
    )


def signin_page(
    campaign: Campaign,
    csrf: str,
    *,
    name: str = "",
    code: str | None = None,
    message: str | None = None,
) -> str:
    """The form; ``code`` picks a message of MESSAGES (``message`` overrides its text)."""
    parts = []
    if code is not None:
        kind, text = MESSAGES.get(code, ("error", ""))
        parts.append(notice(kind, esc(message or text), code=code))
    parts.append(
        '<form method="post" action="/admin/login" class="panel" id="signin">'
        f"{csrf_field(csrf)}"
        '<label for="name">账号</label>'
        f'<input type="text" id="name" name="name" value="{esc(name)}" required'
        ' autocomplete="username" autocapitalize="off" spellcheck="false">'
        '<label for="password">密码</label>'
        '<input type="password" id="password" name="password" required'
        ' autocomplete="current-password">'
        '<button type="submit">登录</button></form>'
        '<p class="hint">账号由技术人员开设，忘记密码也请找技术人员重设。'
        f"同一网络连续输错 {MAX_WRONG} 次密码，这个账号会在该网络暂停登录 "
        f"{LOCK_MS // 60000} 分钟。登录后 {IDLE_MS // 60000} 分钟不操作会自动退出。</p>"
    )
    body = '<div class="signin">' + "".join(parts) + "</div>"
    return layout(campaign, "登录", body, page="signin", viewer=None, code=code)
