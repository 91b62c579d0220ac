"""CORS for media partners' pages, with refusals in the API's JSON error shape."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from votesvc.errors import http_error
from votesvc.responses import error_response

__all__ = ["PartnerCORS"]


class PartnerCORS(CORSMiddleware):
    """Starlette's CORS middleware; a refused preflight answers ``cors_refused``.

    Paths under ``private`` (the organisers' console) get no CORS at all.
    """

    def __init__(self, app: ASGIApp, /, *, private: tuple[str, ...] = (), **options: Any) -> None:
        super().__init__(app, **options)
        self.private = private

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if any(path == root or path.startswith(root + "/") for root in self.private):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        # Starlette's text names what was refused: origin, method or headers.
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        reply = error_response(http_error("cors_refused", f"CORS preflight refused: {refused}."))
        reply.headers.update(
            {k: v for k, v in response.headers.items() if k.startswith("access-control-")}
        )
        return reply
