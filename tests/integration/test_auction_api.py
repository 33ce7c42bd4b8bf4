"""End to end over HTTP against the real service on the real vLLM CPU engine (default model).

Nothing here depends on the 135M model choosing ads: assertions are about what the parser finds in what the
model actually wrote, and the one test that needs an exposed ad asks the model to copy a marker.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis

from service.mechanism.ctr import DEFAULT_CTR_MODEL, ctr_row
from service.mechanism.exposure import parse
from service.mechanism.types import Ad, AuctionContext
from tests.integration.conftest import (
    GENERATION_TIMEOUT_S,
    Server,
    assert_mostly_reproduced,
    catalog_request,
    clear_sample_cache,
    metric_value,
)

pytestmark = pytest.mark.engine


def context_of(request: dict[str, Any]) -> AuctionContext:
    return AuctionContext(
        query=request["query"],
        user_id=request["user"]["id"],
        profile=request["user"]["profile"],
        ads=tuple(Ad(a["id"], a["title"], a["url"], a["bid"]) for a in request["ads"]),
    )


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model": "smollm2-135m-instruct"}


def test_auction_serves_one_of_its_k_samples(client: httpx.Client, catalog: dict[str, Any]) -> None:
    request = catalog_request(catalog, samples=4, max_tokens=24, return_samples=True)
    response = client.post("/v1/auctions", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["samples"] == 4
    assert len(body["sample_texts"]) == 4
    assert body["raw_text"] == body["sample_texts"][body["served_index"]]
    # why each sample stopped, beside it: at 24 tokens the untrained model's answers are cut at the limit
    assert len(body["sample_finish_reasons"]) == 4
    assert "length" in body["sample_finish_reasons"]
    assert set(body["sample_finish_reasons"]) <= {"stop", "length"}
    assert body["model"] == "smollm2-135m-instruct"
    assert len(body["prompt_hash"]) == 64
    assert response.headers["x-request-id"]
    assert set(body["timings_ms"]) == {
        "eligibility",
        "prompt",
        "cache",
        "generate",
        "ctr",
        "mechanism",
        "render",
        "log",
        "total",
    }
    assert body["timings_ms"]["generate"] > 0

    # The mechanism's numbers agree with what the parser finds in the K samples the model really wrote.
    context = context_of(request)
    exposures = [
        parse(text, context.ads, truncated=reason == "length")
        for text, reason in zip(body["sample_texts"], body["sample_finish_reasons"], strict=True)
    ]
    rows = [ctr_row(context, e, DEFAULT_CTR_MODEL) for e in exposures]
    q = body["probabilities"]  # the served distribution (the default rule: the objective's optimum)
    assert len(q) == 4
    assert sum(q) == pytest.approx(1.0)
    served = set(exposures[body["served_index"]].exposed)
    assert [a["id"] for a in body["ads"]] == [a["id"] for a in request["ads"]]
    for i, (ad, result) in enumerate(zip(request["ads"], body["ads"], strict=True)):
        assert result["exposed"] == (ad["id"] in served)
        assert result["itctr"] == pytest.approx(sum(qk * r[i] for qk, r in zip(q, rows, strict=True)))
        assert 0.0 <= result["itctr"] <= 1.0
        assert result["price_per_click"] == ad["bid"]
        assert result["expected_payment"] == pytest.approx(ad["bid"] * result["itctr"])
        assert (result["click_url"] is not None) == result["exposed"]
    assert body["format_errors"] == len(exposures[body["served_index"]].errors)


def test_seeded_requests_are_reproducible(
    client: httpx.Client, catalog: dict[str, Any], service_redis: SyncRedis
) -> None:
    request = catalog_request(catalog, query_index=3, samples=4, max_tokens=24, seed=1234, return_samples=True)
    clear_sample_cache(service_redis)
    first = client.post("/v1/auctions", json=request).json()
    clear_sample_cache(service_redis)  # the second run must come from the engine, not the cache
    second = client.post("/v1/auctions", json=request).json()
    assert not first["cache_hit"]
    assert not second["cache_hit"]
    assert first["auction_id"] != second["auction_id"]
    assert_mostly_reproduced(first["sample_texts"], second["sample_texts"])
    assert first["prompt_hash"] == second["prompt_hash"]

    other_seed = dict(request, options={**request["options"], "seed": 1235})
    third = client.post("/v1/auctions", json=other_seed).json()
    assert third["prompt_hash"] == first["prompt_hash"]
    # Seeds are spread apart per sample, so neighbouring seeds share no sample (vLLM seeds sample i with seed+i).
    assert not set(third["sample_texts"]) & set(first["sample_texts"])


def test_exposed_ad_is_rendered_as_a_signed_link_that_redirects(
    client: httpx.Client, exposed_auction: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    request, body = exposed_auction
    target = request["ads"][0]
    marker = f"@{target['title']}@[{target['id']}]"
    result = body["ads"][0]
    assert result["itctr"] > 0
    assert result["expected_payment"] > 0
    assert marker in body["raw_text"]
    assert marker not in body["text"]
    assert f"[{target['title']}]({result['click_url']})" in body["text"]
    click = client.get(result["click_url"], follow_redirects=False)
    assert click.status_code == 302
    assert click.headers["location"] == target["url"]


def test_forged_click_link_is_refused(client: httpx.Client) -> None:
    response = client.get("/c/WyJhIiwiYiIsImh0dHBzOi8vZXZpbC5leGFtcGxlIl0.aaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbb")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_click"


BAD_BODIES: list[tuple[str, Any]] = [
    ("missing query", {"user": {"id": "u"}, "ads": []}),
    ("missing user", {"query": "q", "ads": []}),
    (
        "negative bid",
        {"query": "q", "user": {"id": "u"}, "ads": [{"id": "A", "title": "T", "url": "https://e.com", "bid": -1}]},
    ),
    (
        "duplicate ids",
        {"query": "q", "user": {"id": "u"}, "ads": [{"id": "A", "title": "T", "url": "https://e.com", "bid": 1}] * 2},
    ),
    ("oversized query", {"query": "x" * 2001, "user": {"id": "u"}, "ads": []}),
    (
        "too many ads",
        {
            "query": "q",
            "user": {"id": "u"},
            "ads": [{"id": f"A{i}", "title": "T", "url": "https://e.com", "bid": 1} for i in range(101)],
        },
    ),
    ("K too large", {"query": "q", "user": {"id": "u"}, "ads": [], "options": {"samples": 17}}),
    ("K zero", {"query": "q", "user": {"id": "u"}, "ads": [], "options": {"samples": 0}}),
    ("max_tokens too large", {"query": "q", "user": {"id": "u"}, "ads": [], "options": {"max_tokens": 513}}),
    ("not an object", [1, 2, 3]),
]


@pytest.mark.parametrize(("case", "payload"), BAD_BODIES, ids=[c for c, _ in BAD_BODIES])
def test_bad_input_gets_422_in_the_error_shape(client: httpx.Client, case: str, payload: Any) -> None:
    response = client.post("/v1/auctions", json=payload)
    assert response.status_code == 422, case
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert error["status"] == 422
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert isinstance(error["details"], list)
    assert error["details"]


def test_invalid_json_and_unknown_routes_use_the_error_shape(client: httpx.Client) -> None:
    broken = client.post("/v1/auctions", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422
    assert broken.json()["error"]["message"] == "the request body is not valid JSON"
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"
    wrong_method = client.get("/v1/auctions")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["type"] == "method_not_allowed"


def test_prompt_longer_than_the_model_allows_is_a_clear_422(client: httpx.Client) -> None:
    title = "Ultra Comfortable Stability Running Shoe With Extra Arch Support Model"
    ads = [{"id": f"Ad-{i}", "title": f"{title} {i}", "url": "https://e.com", "bid": i} for i in range(100)]
    response = client.post("/v1/auctions", json={"query": "shoes?", "user": {"id": "u"}, "ads": ads})
    assert response.status_code == 422
    assert "prompt has" in response.json()["error"]["message"]


def test_an_auction_without_ads_still_answers(client: httpx.Client) -> None:
    response = client.post(
        "/v1/auctions", json={"query": "What is the capital of France?", "user": {"id": "u"}, "ads": []}
    )
    assert response.status_code == 200
    assert response.json()["ads"] == []
    assert response.json()["text"]


async def test_concurrent_long_seeded_prompts_do_not_crash_the_engine(server: Server, catalog: dict[str, Any]) -> None:
    # Regression for the CPU engine's crash when chunked prefill splits seeded prompts (DESIGN.md §3):
    # many long, different, seeded prompts at once. Sized to stay well inside the server's 30 s budget on a slow day:
    # 8 × 20 ads (≈8.4k prompt tokens) took 20 s here on 2026-12-02, prefill running at ≈400 tokens/s.
    requests = []
    for i in range(6):
        request = catalog_request(catalog, n_ads=16, query_index=i, samples=4, max_tokens=8, seed=100 + i)
        request["ads"] = request["ads"][i:] + request["ads"][:i]  # different prompts, little shared prefix
        requests.append(request)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=240) as http:
        responses = await asyncio.gather(*(http.post("/v1/auctions", json=r) for r in requests))
        assert [r.status_code for r in responses] == [200] * 6, [r.text[:200] for r in responses]
        assert all(r.json()["samples"] == 4 for r in responses)
        assert (await http.get("/readyz")).status_code == 200


def _running(server: Server) -> float:
    return metric_value(httpx.get(f"{server.base_url}/metrics").text, "vllm:num_requests_running")


def _generated_tokens(server: Server) -> float:
    return metric_value(httpx.get(f"{server.base_url}/metrics").text, "vllm:generation_tokens_total")


def _wait_until_idle(server: Server, seconds: float = 20) -> float:
    """Requests the engine is still running after waiting up to ``seconds`` for them to stop."""
    deadline = time.monotonic() + seconds
    while _running(server) > 0 and time.monotonic() < deadline:
        time.sleep(0.25)
    return _running(server)


async def test_client_disconnect_aborts_generation(server: Server, catalog: dict[str, Any]) -> None:
    tokens_before = _generated_tokens(server)
    # K=8 × 512 tokens takes ~30 s on this CPU. The client leaves as soon as the engine has decoded a token, not after
    # a fixed wait, so a slow or busy machine (long prefill) cannot turn this into a test of nothing.
    request = catalog_request(catalog, samples=8, max_tokens=512, seed=5)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=GENERATION_TIMEOUT_S + 60) as http:
        auction = asyncio.create_task(http.post("/v1/auctions", json=request))
        deadline = time.monotonic() + GENERATION_TIMEOUT_S
        while not auction.done() and time.monotonic() < deadline:
            metrics = (await http.get("/metrics")).text
            if metric_value(metrics, "vllm:generation_tokens_total") > tokens_before:
                break
            await asyncio.sleep(0.1)
        assert not auction.done(), "the auction finished before the client could leave"
        auction.cancel()  # closes the connection mid-response: the client has gone
        with pytest.raises(asyncio.CancelledError):
            await auction
    assert _wait_until_idle(server) == 0, "generation kept running after the client left"
    generated = _generated_tokens(server) - tokens_before
    assert 0 < generated < 8 * 512 / 2, f"{generated} tokens: the K samples were not cut short"


def test_generation_timeout_is_504_and_aborts(client: httpx.Client, server: Server, catalog: dict[str, Any]) -> None:
    tokens_before = _generated_tokens(server)
    # 16 × 512 tokens needs well over the server's 30 s budget here.
    request = catalog_request(catalog, samples=16, max_tokens=512, seed=6)
    response = client.post("/v1/auctions", json=request, timeout=GENERATION_TIMEOUT_S + 60)
    assert response.status_code == 504, response.text[:300]
    assert response.json()["error"]["type"] == "engine_timeout"
    assert _wait_until_idle(server) == 0, "generation kept running after the timeout"
    generated = _generated_tokens(server) - tokens_before
    assert 0 < generated < 16 * 512, f"{generated} tokens: the K samples were not cut short"
