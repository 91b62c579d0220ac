"""POST /v1/votes and the read endpoints, through the HTTP interface."""

from __future__ import annotations

from tests.support import Service, phone


async def test_accepted_vote_returns_201_with_remaining(service: Service) -> None:
    response = await service.vote("N07", phone(1))
    assert response.status_code == 201
    body = response.json()
    assert body["nominee"] == "N07"
    assert body["remaining_today"] == 9
    assert len(body["vote_id"]) == 32
