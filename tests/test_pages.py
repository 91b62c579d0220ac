"""The shipped pages and their assets: served from the package, cached sensibly, offline."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from tests.support import Service
from votesvc.pages import ASSET_CACHE, PAGE_CACHE

STATIC = resources.files("votesvc") / "static"
PAGES = {"/": "index.html", "/dashboard": "dashboard.html"}


@pytest.mark.parametrize(("path", "name"), PAGES.items())
async def test_pages_are_served_and_revalidated(service: Service, path: str, name: str) -> None:
    response = await service.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == PAGE_CACHE
    assert response.text == (STATIC / name).read_text("utf-8")
    again = await service.client.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["cache-control"] == PAGE_CACHE
    head = await service.client.head(path)
    assert head.status_code == 200
    assert head.content == b""


async def test_assets_are_cached_for_a_while(service: Service) -> None:
    for name in ("dashboard.js", "dashboard.css", "campaign.js", "campaign.css"):
        response = await service.client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["cache-control"] == ASSET_CACHE
        assert "etag" in response.headers
    script = await service.client.get("/static/dashboard.js")
    assert "javascript" in script.headers["content-type"]


async def test_missing_asset_is_a_json_404(service: Service) -> None:
    response = await service.client.get("/static/nothing-here.js")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    escape = await service.client.get("/static/../app.py")
    assert escape.status_code == 404


async def test_pages_post_is_not_allowed(service: Service) -> None:
    response = await service.client.post("/dashboard")
    assert response.status_code == 405


def test_every_asset_a_page_needs_is_in_the_package_and_nothing_is_remote() -> None:
    shipped = {entry.name for entry in STATIC.iterdir()}
    for name in ("index.html", "dashboard.html"):
        html = (STATIC / name).read_text("utf-8")
        for asset in re.findall(r'(?:src|href)="/static/([^"]+)"', html):
            assert asset in shipped, f"{name} needs /static/{asset}"
    for name in shipped:
        text = (STATIC / name).read_text("utf-8")
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), (
            f"{name} loads something from the network"
        )
