"""The pages the service ships: the campaign page at ``/``, the dashboard at
``/dashboard``, and their stylesheets and scripts under ``/static/``.

The files are part of the package (``votesvc/static/``), so an installed
service serves them with no network and no build step. HTML is revalidated on
every load (``no-cache``; the ETag and Last-Modified turn a repeat into a
``304``), so a new release shows at the next reload; stylesheets and scripts
may be reused for five minutes, which spares a phone three requests per page
view during a peak and still brings a release to every browser soon after.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

__all__ = ["ASSET_CACHE", "PAGE_CACHE", "page_routes"]

PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=300"


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
        return response


def page_routes() -> list[BaseRoute]:
    """Routes for ``/``, ``/dashboard`` and ``/static/...``."""
    files = PackageFiles()

    def page(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await files.get_response(name, request.scope)

        return endpoint

    return [
        Route("/", page("index.html"), methods=["GET", "HEAD"], name="campaign_page"),
        Route("/dashboard", page("dashboard.html"), methods=["GET", "HEAD"], name="dashboard"),
        Mount("/static", app=files, name="static"),
    ]
