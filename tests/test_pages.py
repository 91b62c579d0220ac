"""The shipped pages and their assets: served from the package, cached sensibly, offline."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from tests.support import Service, running_service
from votesvc.pages import ASSET_CACHE, NO_FRAMES, PAGE_CACHE
from votesvc.redis_server import EmbeddedRedis

STATIC = resources.files("votesvc") / "static"
PAGES = {
    "/": "index.html",
    "/dashboard": "dashboard.html",
    "/embed/vote": "embed-vote.html",
    "/embed/board": "embed-board.html",
}


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


@pytest.mark.parametrize("path", [*PAGES, "/static/index.html", "/static/embed-vote.html"])
async def test_no_site_may_frame_a_page_by_default(service: Service, path: str) -> None:
    response = await service.client.get(path)
    assert response.headers["content-security-policy"] == NO_FRAMES
    again = await service.client.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["content-security-policy"] == NO_FRAMES


async def test_every_html_page_of_the_app_forbids_framing(service: Service) -> None:
    """Not only this module's pages: any route that answers HTML (the console, /results)."""
    checked = []
    for route in service.app.routes:
        path = getattr(route, "path", "")
        methods = getattr(route, "methods", None) or ()
        if "GET" not in methods or "{" in path or path.startswith("/v1/"):
            continue
        response = await service.client.get(path, follow_redirects=True)
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        checked.append(path)
        policy = response.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in policy, f"{path} may be framed: {policy!r}"
    assert {"/", "/dashboard", "/embed/vote", "/embed/board"} <= set(checked)


@pytest.mark.usefixtures("redis")
async def test_the_embed_origins_may_frame_the_embed_pages_only(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    origins = ("https://news.example.com", "https://*.media.example")
    async with running_service(redis_server.url, tmp_path, embed_origins=origins) as service:
        for path in PAGES:
            policy = (await service.client.get(path)).headers["content-security-policy"]
            if path.startswith("/embed/"):
                assert policy == "frame-ancestors https://news.example.com https://*.media.example"
            else:
                assert policy == NO_FRAMES
        asset = await service.client.get("/static/site.js")
        assert "content-security-policy" not in asset.headers


async def test_assets_are_cached_for_a_while(service: Service) -> None:
    for name in ("site.js", "dashboard.js", "dashboard.css", "campaign.js", "campaign.css"):
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
    for name in PAGES.values():
        html = (STATIC / name).read_text("utf-8")
        assert '<script src="/static/site.js" defer></script>' in html  # the API's address
        for asset in re.findall(r'(?:src|href)="/static/([^"]+)"', html):
            assert asset in shipped, f"{name} needs /static/{asset}"
    for name in shipped:
        text = (STATIC / name).read_text("utf-8")
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), (
            f"{name} loads something from the network"
        )
