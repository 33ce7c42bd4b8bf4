"""The relevance floor (``relevance_floor``): under the marker grammar, only the ads that fit the question can be
placed. Served by the shipped version (the session's server pins the base model, which places almost no ads),
in-process as ``make bench`` builds its app."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app, running
from service.data import catalog_ad, profile_of, request_body
from service.mechanism.exposure import parse
from service.mechanism.types import AuctionContext
from service.models import registry
from service.settings import PROJECT_ROOT, Settings
from service.storage.redis import RedisServer
from tests.integration.conftest import redis_db_url

pytestmark = pytest.mark.engine


@pytest.mark.skipif(
    registry.default_version(PROJECT_ROOT / "versions") == registry.BASE, reason="no shipped model version"
)
async def test_the_relevance_floor_lets_the_model_place_only_ads_that_fit_the_question(
    redis_server: RedisServer, tmp_path: Path, catalog: dict[str, Any]
) -> None:
    """Two running ads and two kitchen ads bid higher, asked a running question and an off-topic one ("Who won
    the 1998 football World Cup?", where the shipped model writes "… was won by @…"; docs/irpo.md): the same
    seeded requests without the floor and with it. Without, the model places kitchen ads; with it, only the
    running ads, and none on the off-topic question — and it still places ads where they fit."""
    settings = Settings(
        secret_key=secrets.token_urlsafe(32),
        environment="test",
        redis_url=redis_db_url(redis_server, 4),
        spool_path=tmp_path / "spool.jsonl",
    )
    by_id = {ad["id"]: ad for ad in catalog["ads"]}
    picked = {"Ad-7001": 20.0, "Ad-7002": 25.0, "Ad-7006": 80.0, "Ad-7007": 90.0}
    ads = tuple(catalog_ad(by_id[ad_id], bid) for ad_id, bid in picked.items())
    fitting = {ad_id for ad_id in picked if by_id[ad_id]["category"] == "running"}
    placed: dict[bool, dict[str, int]] = {False: {"fit": 0, "unfit": 0}, True: {"fit": 0, "unfit": 0}}
    app = create_app(settings)
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://floor", timeout=300) as http,
    ):
        for query_index in (0, 39):  # "I have flat feet …" (running); "Who won the 1998 football World Cup?"
            for seed in (1, 2, 3):
                user_id, profile = profile_of(catalog["profiles"][seed])
                context = AuctionContext(catalog["queries"][query_index]["query"], user_id, profile, ads)
                for floor in (False, True):
                    request = request_body(context, samples=8, max_tokens=64, seed=seed, return_samples=True)
                    request["options"]["relevance_floor"] = floor
                    body = (await http.post("/v1/auctions", json=request)).json()
                    assert body["mechanism"]["relevance_floor"] is floor
                    for text in body["sample_texts"]:
                        for placement in parse(text, ads, truncated=True).placements:
                            placed[floor]["fit" if placement.ad_id in fitting else "unfit"] += 1
    print("placed", placed)
    assert placed[False]["unfit"] > 0, placed  # the comparison shows something
    assert placed[True]["unfit"] == 0, placed
    assert placed[True]["fit"] > 0, placed
