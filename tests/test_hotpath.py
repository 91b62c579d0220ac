"""The raw ASGI front (votesvc/hotpath.py): what it serves, and how it fails."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Receive, Scope

from votesvc.hotpath import RawRoute, Reply, VoteApp, json_reply


async def hello(scope: Scope, receive: Receive) -> Reply | None:
    return json_reply(b'{"hello":"world"}')


async def broken(scope: Scope, receive: Receive) -> Reply | None:
    raise RuntimeError("secret detail")


def app(**kwargs: Any) -> VoteApp:
    routes = [
        RawRoute("/hello", hello, methods=["GET"]),
        RawRoute("/broken", broken, methods=["POST"]),
    ]
    return VoteApp(routes=routes, **kwargs)


async def get(target: VoteApp, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=target)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


async def test_raw_routes_are_served_ahead_of_starlette() -> None:
    front = app()
    assert set(front.hot) == {("GET", "/hello"), ("POST", "/broken")}
    response = await get(front, "GET", "/hello")
    assert response.status_code == 200
    assert response.json() == {"hello": "world"}
    assert response.headers["content-type"] == "application/json"


async def test_other_methods_and_head_go_through_starlette() -> None:
    front = app()
    assert (await get(front, "DELETE", "/hello")).status_code == 405
    head = await get(front, "HEAD", "/hello")
    assert head.status_code == 200
    assert (await get(front, "GET", "/elsewhere")).status_code == 404


async def test_an_unexpected_error_is_a_json_500_without_the_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="votesvc.hotpath"):
        response = await get(app(), "POST", "/broken")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret detail" not in response.text
    assert "secret detail" in caplog.text  # the operator gets the traceback


async def test_with_user_middleware_nothing_is_served_raw() -> None:
    front = app(middleware=[Middleware(GZipMiddleware)])
    assert front.hot == {}
    response = await get(front, "GET", "/hello")
    assert response.json() == {"hello": "world"}
