# ruff: noqa: RUF001  (the pages speak Chinese: full-width punctuation)
"""The console's replies that are a message, not a page of data: 503, 403, 413."""

from __future__ import annotations

from starlette.responses import HTMLResponse

from votesvc.admin.html import Viewer, esc, layout, notice
from votesvc.campaign import Campaign
from votesvc.ledger.times import zh_time

__all__ = ["Replies", "html_reply"]


def html_reply(text: str, status: int = 200) -> HTMLResponse:
    """A console page: never cached (it shows live figures and a CSRF token)."""
    return HTMLResponse(text, status, headers={"Cache-Control": "no-store"})


class Replies:
    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign

    def message(
        self, title: str, kind: str, text: str, *, status: int, code: str, viewer: Viewer | None
    ) -> HTMLResponse:
        """A page saying ``text`` (HTML); ``code`` is the stable word for what happened."""
        body = notice(kind, text, code=code) + (
            '<p><a class="button secondary" href="/admin/overview">回到总览</a></p>'
            if viewer is not None
            else ""
        )
        return html_reply(
            layout(self.campaign, title, body, page="message", viewer=viewer, code=code), status
        )

    def unavailable(self, viewer: Viewer | None = None, *, redis: bool = False) -> HTMLResponse:
        what = "实时计数（Redis）" if redis else "账本数据库"
        return self.message(
            "暂时无法完成",
            "error",
            f"{what}暂时无法连接，这次操作没有完成，数据没有改变。请稍后刷新再试；"
            "如果一直这样，请联系技术人员。",
            status=503,
            code="unavailable",
            viewer=viewer,
        )

    def csrf_failed(self, viewer: Viewer) -> HTMLResponse:
        return self.message(
            "操作没有执行",
            "error",
            "这个表单已过期或来源不明，为了安全，这次操作没有执行。请回到页面，刷新后再操作一次。",
            status=403,
            code="csrf_failed",
            viewer=viewer,
        )

    def forbidden(self, viewer: Viewer) -> HTMLResponse:
        return self.message(
            "没有权限",
            "error",
            "您的账号是查看账号，只能查看，不能作废选票、认证结果或导出账本。"
            "需要时，请有操作权限的同事来做。",
            status=403,
            code="forbidden",
            viewer=viewer,
        )

    def certified(self, viewer: Viewer, certified_at: int | None) -> HTMLResponse:
        when = (
            "" if certified_at is None else f"已于 {zh_time(certified_at, self.campaign.timezone)} "
        )
        return self.message(
            "结果已认证",
            "error",
            f"<strong>这次没有作废任何选票。</strong>评选结果{esc(when)}认证并公布，"
            '选票已经冻结，不能再作废。公布的结果见<a href="/results">结果公布页</a>。',
            status=409,
            code="result_certified",
            viewer=viewer,
        )

    def export_changed(self, viewer: Viewer) -> HTMLResponse:
        return self.message(
            "账本已变化",
            "error",
            "生成导出文件之后，账本有了变化（例如又作废了选票），现在的文件与页面上显示的校验值"
            '对不上，所以没有下载。请回到<a href="/admin/export">导出</a>页重新生成。',
            status=409,
            code="export_changed",
            viewer=viewer,
        )

    def too_large(self, viewer: Viewer) -> HTMLResponse:
        return self.message(
            "内容太多",
            "error",
            "提交的内容太多，这次没有处理。请分几次提交。",
            status=413,
            code="too_large",
            viewer=viewer,
        )
