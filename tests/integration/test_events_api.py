"""The service's events in Redis, end to end on the real engine: impressions, clicks, the sample cache, and a
Redis outage in the middle of traffic."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis

from service.events.log import CLICKS, IMPRESSIONS
from service.mechanism.exposure import marker_regex
from service.mechanism.types import AuctionContext
from service.storage.redis import RedisServer
from tests.integration.conftest import (
    Server,
    catalog_request,
    clear_sample_cache,
    events_of,
    metric_value,
    wait_until,
)

pytestmark = pytest.mark.engine


def test_an_auction_writes_exactly_one_impression_with_all_k_samples(
    client: httpx.Client, catalog: dict[str, Any], service_redis: SyncRedis
) -> None:
    request = catalog_request(catalog, query_index=5, samples=4, max_tokens=16, seed=77, return_samples=True)
    body = client.post("/v1/auctions", json=request).json()
    auction_id = body["auction_id"]
    assert wait_until(lambda: len(events_of(service_redis, IMPRESSIONS, auction_id)) > 0)
    [(event, duplicate)] = events_of(service_redis, IMPRESSIONS, auction_id)
    assert not duplicate
    assert [s["text"] for s in event["samples"]] == body["sample_texts"]
    assert event["served_index"] == body["served_index"]
    assert event["prompt_hash"] == body["prompt_hash"]
    assert event["model"] == body["model"]
    # The marker grammar (the default) over the auction's candidates is part of the replayable sampling
    grammar = marker_regex(AuctionContext.from_dict(event).ads)
    assert event["sampling"] == {
        "n": 4,
        "max_tokens": 16,
        "temperature": 0.7,
        "top_p": 0.8,
        "seed": 77,
        "regex": grammar,
    }
    assert event["mechanism"]["marker_grammar"] is True
    assert event["query"] == request["query"]
    assert event["user"] == request["user"]
    assert [(a["id"], a["bid"]) for a in event["ads"]] == [(a["id"], a["bid"]) for a in request["ads"]]
    assert [r["itctr"] for r in event["results"]] == [a["itctr"] for a in body["ads"]]
    assert event["cache_hit"] is body["cache_hit"]


def test_a_click_is_logged_once_and_repeats_are_flagged(
    client: httpx.Client, exposed_auction: tuple[dict[str, Any], dict[str, Any]], service_redis: SyncRedis
) -> None:
    request, body = exposed_auction
    auction_id, ad = body["auction_id"], body["ads"][0]
    before = len(events_of(service_redis, CLICKS, auction_id))
    for _ in range(2):
        assert client.get(ad["click_url"], follow_redirects=False).status_code == 302
    tampered = ad["click_url"][:-30] + ("A" if ad["click_url"][-30] != "A" else "B") + ad["click_url"][-29:]
    assert client.get(tampered, follow_redirects=False).status_code == 404
    assert wait_until(lambda: len(events_of(service_redis, CLICKS, auction_id)) >= before + 2)
    clicks = events_of(service_redis, CLICKS, auction_id)
    assert len(clicks) == before + 2  # the tampered one is never logged
    assert [dup for _, dup in clicks] == [False] + [True] * (len(clicks) - 1)
    event = clicks[0][0]
    assert event["ad_id"] == request["ads"][0]["id"]
    assert event["price_per_click"] == ad["price_per_click"]


def test_a_cache_hit_skips_the_engine_and_still_draws_a_fresh_served_sample(
    server: Server, client: httpx.Client, catalog: dict[str, Any], service_redis: SyncRedis
) -> None:
    request = catalog_request(catalog, query_index=7, samples=4, max_tokens=16, return_samples=True)  # unseeded
    clear_sample_cache(service_redis)
    first = client.post("/v1/auctions", json=request).json()
    assert wait_until(lambda: any(service_redis.scan_iter("samples:*")))  # the cache write is in the background
    tokens_before = metric_value(client.get("/metrics").text, "vllm:generation_tokens_total")
    hits = [client.post("/v1/auctions", json=request).json() for _ in range(6)]
    assert metric_value(client.get("/metrics").text, "vllm:generation_tokens_total") == tokens_before
    assert not first["cache_hit"]
    for hit in hits:
        assert hit["cache_hit"]
        assert hit["sample_texts"] == first["sample_texts"]
        assert hit["seed"] == first["seed"]
        assert hit["raw_text"] == hit["sample_texts"][hit["served_index"]]
    assert len({first["auction_id"], *(h["auction_id"] for h in hits)}) == 7
    assert wait_until(lambda: len(events_of(service_redis, IMPRESSIONS, hits[-1]["auction_id"])) == 1)
    assert events_of(service_redis, IMPRESSIONS, hits[-1]["auction_id"])[0][0]["cache_hit"] is True


def test_redis_outage_mid_traffic_loses_nothing_and_duplicates_nothing(
    client: httpx.Client,
    catalog: dict[str, Any],
    redis_server: RedisServer,
    service_redis: SyncRedis,
    exposed_auction: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    _, exposed = exposed_auction
    clicks_before = len(events_of(service_redis, CLICKS, exposed["auction_id"]))
    redis_server.stop()
    try:
        auction_ids = []
        for i in range(4):
            request = catalog_request(catalog, query_index=10 + i, samples=2, max_tokens=8, seed=500 + i)
            response = client.post("/v1/auctions", json=request)
            assert response.status_code == 200, response.text[:300]  # served while Redis is down
            assert response.json()["cache_hit"] is False
            auction_ids.append(response.json()["auction_id"])
        for _ in range(3):
            assert client.get(exposed["ads"][0]["click_url"], follow_redirects=False).status_code == 302
        # The writer spools asynchronously (it retries Redis first): wait for the 4 impressions and 3 clicks.
        assert wait_until(
            lambda: metric_value(client.get("/metrics").text, "adauction_events_total", result="spooled") >= 7
        )
    finally:
        redis_server.start()  # same port, same AOF
    assert wait_until(
        lambda: (
            all(len(events_of(service_redis, IMPRESSIONS, a)) == 1 for a in auction_ids)
            and len(events_of(service_redis, CLICKS, exposed["auction_id"])) >= clicks_before + 3
        ),
        seconds=30,
    )
    assert all(len(events_of(service_redis, IMPRESSIONS, a)) == 1 for a in auction_ids)
    clicks = events_of(service_redis, CLICKS, exposed["auction_id"])
    assert len(clicks) == clicks_before + 3
    assert sum(not dup for _, dup in clicks) == 1  # still counted once
    assert metric_value(client.get("/metrics").text, "adauction_events_total", result="dropped") == 0
