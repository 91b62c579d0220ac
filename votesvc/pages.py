"""The pages the service ships: the campaign page at ``/``, the dashboard at
``/dashboard`` (``?display=wall`` for a hall's screen), the embed kit at
``/embed/vote`` and ``/embed/board``, and their stylesheets and scripts under
``/static/``.

The files are part of the package (``votesvc/static/``), so an installed
service serves them with no network and no build step. HTML is revalidated on
every load (``no-cache``; the ETag and Last-Modified turn a repeat into a
``304``), so a new release shows at the next reload; stylesheets and scripts
may be reused for five minutes, which spares a phone three requests per page
view during a peak and still brings a release to every browser soon after.

No other site may show a page in a frame (``frame-ancestors 'none'``: a page
framed invisibly could be clicked through), except the embed pages, which the
origins of ``VOTESVC_EMBED_ORIGINS`` may frame: a media partner's article.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

__all__ = ["ASSET_CACHE", "CSP", "NO_FRAMES", "PAGE_CACHE", "frame_policy", "page_routes"]

PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=300"
NO_FRAMES = "frame-ancestors 'none'"
CSP = "Content-Security-Policy"


def frame_policy(origins: Sequence[str]) -> str:
    """The Content-Security-Policy of an embed page: framed by ``origins`` only."""
    return f"frame-ancestors {' '.join(origins)}" if origins else NO_FRAMES


class PackageFiles(StaticFiles):
    """``votesvc/static/`` with a ``Cache-Control`` that suits each kind of file."""

    def __init__(self) -> None:
        super().__init__(packages=[("votesvc", "static")])

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        html = os.fspath(full_path).endswith(".html")
        response.headers["Cache-Control"] = PAGE_CACHE if html else ASSET_CACHE
        if html:
            response.headers[CSP] = NO_FRAMES
        return response


def page_routes(embed_origins: Sequence[str] = ()) -> list[BaseRoute]:
    """Routes for ``/``, ``/dashboard``, ``/embed/...`` and ``/static/...``."""
    files = PackageFiles()
    embeddable = frame_policy(embed_origins)

    def page(name: str, policy: str = NO_FRAMES) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            response = await files.get_response(name, request.scope)
            response.headers[CSP] = policy
            return response

        return endpoint

    get = ["GET", "HEAD"]
    return [
        Route("/", page("index.html"), methods=get, name="campaign_page"),
        Route("/dashboard", page("dashboard.html"), methods=get, name="dashboard"),
        Route("/embed/vote", page("embed-vote.html", embeddable), methods=get, name="embed_vote"),
        Route(
            "/embed/board", page("embed-board.html", embeddable), methods=get, name="embed_board"
        ),
        Mount("/static", app=files, name="static"),
    ]
