"""Every entry point serves the model version the settings name: a benchmark built the way `make bench` builds its
app (``create_app(Settings(...))`` in-process, no `serve` command) serves the registry's DEFAULT, the version
``/readyz`` reports — round 1 measured the base weights there while the settings said irpo-r1."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from service.app import create_app, running
from service.models import registry
from service.settings import PROJECT_ROOT, Settings
from service.storage.redis import RedisServer
from tests.integration.conftest import redis_db_url

pytestmark = pytest.mark.engine


@pytest.mark.skipif(
    registry.default_version(PROJECT_ROOT / "versions") == registry.BASE, reason="no shipped model version"
)
async def test_an_in_process_app_serves_the_default_version(redis_server: RedisServer, tmp_path: Path) -> None:
    default = registry.default_version(PROJECT_ROOT / "versions")
    settings = Settings(
        secret_key=secrets.token_urlsafe(32),
        environment="test",
        redis_url=redis_db_url(redis_server, 3),
        spool_path=tmp_path / "spool.jsonl",
    )
    app = create_app(settings)
    async with running(app) as state:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            ready = (await http.get("/readyz")).json()
        assert ready == {"status": "ready", "model": default}
        assert state["auctions"].settings.model_version == default
        assert Path(state["auctions"].settings.model).name == default  # the merged weights, not the base folder
