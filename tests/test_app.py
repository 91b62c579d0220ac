"""Application wiring: optional CORS for a media partner's page on another origin."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from tests.support import Service, phone, running_service
from votesvc.redis_server import EmbeddedRedis

PARTNER = "https://media.example"


async def test_cors_is_off_by_default(service: Service) -> None:
    response = await service.client.post(
        "/v1/votes", json={"nominee": "N01", "phone": phone(1)}, headers={"Origin": PARTNER}
    )
    assert response.status_code == 201
    assert "access-control-allow-origin" not in response.headers


async def test_cors_lets_a_configured_origin_vote(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with running_service(redis_server.url, tmp_path, cors_origins=(PARTNER,)) as svc:
        preflight = await svc.client.options(
            "/v1/votes",
            headers={
                "Origin": PARTNER,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == PARTNER
        vote = await svc.client.post(
            "/v1/votes", json={"nominee": "N01", "phone": phone(1)}, headers={"Origin": PARTNER}
        )
        assert vote.status_code == 201
        assert vote.headers["access-control-allow-origin"] == PARTNER
        stranger = await svc.client.post(
            "/v1/votes",
            json={"nominee": "N02", "phone": phone(1)},
            headers={"Origin": "https://elsewhere.example"},
        )
        assert "access-control-allow-origin" not in stranger.headers


async def test_a_refused_preflight_is_a_json_error(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with running_service(redis_server.url, tmp_path, cors_origins=(PARTNER,)) as svc:
        refused = await svc.client.options(
            "/v1/votes",
            headers={
                "Origin": "https://elsewhere.example",
                "Access-Control-Request-Method": "POST",
            },
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "cors_refused"
        assert "origin" in refused.json()["error"]["message"]
