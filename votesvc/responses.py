"""JSON responses (orjson) and the one shape every error reply has."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from votesvc.errors import VoteError, error_body

__all__ = ["JSON", "error_response", "json_response"]

JSON = "application/json"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type=JSON)


def error_response(error: VoteError) -> Response:
    """``{"error": {"code", "message"}}`` with ``Retry-After`` when there is one."""
    headers = dict(error.headers) if error.headers else {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(error_body(error), status_code=error.status, headers=headers, media_type=JSON)
