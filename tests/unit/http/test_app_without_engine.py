"""The HTTP layer while the engine is not loaded (start-up, or after it stopped): clear 503s, live process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.app import create_app
from service.settings import Settings


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(secret_key="s" * 40, environment="test"))  # lifespan not run: no engine
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_auction_is_503_with_retry_after(client: httpx.AsyncClient) -> None:
    body = {"query": "q", "user": {"id": "u"}, "ads": []}
    response = await client.post("/v1/auctions", json=body, headers={"X-Request-ID": "req-42"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-request-id"] == "req-42"
    assert response.json() == {
        "error": {
            "type": "engine_unavailable",
            "message": "the service is starting; the engine is not loaded yet",
            "status": 503,
            "request_id": "req-42",
            "details": None,
        }
    }


async def test_liveness_up_readiness_down(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["error"]["type"] == "engine_unavailable"


async def test_unsafe_request_ids_are_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32


async def test_metrics_exposed(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "python_info" in response.text
