"""Streamed auctions on the real engine: OpenAI-style chunks of the served sample, the auction event, [DONE];
a client that leaves aborts all K samples and the impression is logged as cut short."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis

from service.events.log import IMPRESSIONS
from service.mechanism.exposure import SPONSORED_TEMPLATE, parse, render
from service.mechanism.types import Ad
from tests.integration.conftest import (
    Server,
    assert_mostly_reproduced,
    catalog_request,
    clear_sample_cache,
    events_of,
    metric_value,
    wait_until,
)

pytestmark = pytest.mark.engine


def read_sse(response: httpx.Response) -> list[tuple[str | None, str]]:
    """(event name, data) of every event of a finished stream."""
    events, name, data = [], None, []
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
        elif line == "" and data:
            events.append((name, "\n".join(data)))
            name, data = None, []
    return events


def test_a_streamed_auction_sends_the_served_sample_then_the_auction(
    client: httpx.Client, catalog: dict[str, Any], service_redis: SyncRedis
) -> None:
    clear_sample_cache(service_redis)
    # Live streaming is the uniform rule's (the optimal rule sends the selected sample once all K are in).
    request = {**catalog_request(catalog, query_index=12, samples=4, max_tokens=32, seed=31, return_samples=True)}
    request["options"]["selection"] = "uniform"
    request["stream"] = True
    with client.stream("POST", "/v1/auctions", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_sse(response)

    assert events[-1] == (None, "[DONE]")
    name, auction_json = events[-2]
    assert name == "auction"
    result = json.loads(auction_json)
    chunks = [json.loads(data) for name, data in events[:-2]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == f"auction-{result['auction_id']}" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}
    assert len(chunks) >= 3  # role, at least one piece of text, finish
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)

    # The stream showed exactly the served sample as rendered, and that sample is one of the K samples.
    assert result["raw_text"] == result["sample_texts"][result["served_index"]]
    assert streamed == result["text"]
    ads = tuple(Ad(a["id"], a["title"], a["url"], a["bid"]) for a in request["ads"])
    links = {a["id"]: a["click_url"] for a in result["ads"] if a["click_url"]}
    finish = "length" if chunks[-1]["choices"][0]["finish_reason"] == "length" else None
    rendered = render(
        parse(result["raw_text"], ads, truncated=finish == "length"), links.__getitem__, SPONSORED_TEMPLATE
    )
    assert streamed == rendered  # the sponsored label streams with its link
    assert not result["cache_hit"]

    # Seeded: the same K samples as the non-streamed auction would generate.
    clear_sample_cache(service_redis)
    whole = client.post("/v1/auctions", json={**request, "stream": False}).json()
    assert_mostly_reproduced(whole["sample_texts"], result["sample_texts"])


def test_errors_before_the_first_words_keep_their_status(client: httpx.Client) -> None:
    title = "Ultra Comfortable Stability Running Shoe With Extra Arch Support Model"
    ads = [{"id": f"Ad-{i}", "title": f"{title} {i}", "url": "https://e.com", "bid": i} for i in range(100)]
    response = client.post("/v1/auctions", json={"query": "q", "user": {"id": "u"}, "ads": ads, "stream": True})
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "invalid_request"


def test_a_client_that_leaves_aborts_all_k_samples_and_the_impression_is_cut_short(
    server: Server, catalog: dict[str, Any], service_redis: SyncRedis
) -> None:
    metrics_text = httpx.get(f"{server.base_url}/metrics").text
    tokens_before = metric_value(metrics_text, "vllm:generation_tokens_total")
    ttft_before = metric_value(metrics_text, "adauction_stream_ttft_seconds_count")
    clear_sample_cache(service_redis)
    request = {**catalog_request(catalog, query_index=14, samples=8, max_tokens=512, seed=8), "stream": True}
    request["options"]["selection"] = "uniform"  # live: words are shown while the K are generated
    shown = ""
    auction_id = None
    with (
        httpx.Client(base_url=server.base_url, timeout=60) as http,
        http.stream("POST", "/v1/auctions", json=request) as r,
    ):
        for line in r.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[len("data: ") :])
                auction_id = chunk["id"].removeprefix("auction-")
                shown += chunk["choices"][0]["delta"].get("content", "")
                if len(shown) > 20:
                    break  # the user closes the tab
    assert auction_id is not None
    started = time.monotonic()

    def idle() -> bool:
        return metric_value(httpx.get(f"{server.base_url}/metrics").text, "vllm:num_requests_running") == 0

    assert wait_until(idle, seconds=20), "generation went on after the client left"
    assert time.monotonic() - started < 15
    metrics_text = httpx.get(f"{server.base_url}/metrics").text
    generated = metric_value(metrics_text, "vllm:generation_tokens_total") - tokens_before
    assert 0 < generated < 8 * 512 / 2, f"{generated} tokens: the K samples were not cut short"
    assert metric_value(metrics_text, "adauction_stream_ttft_seconds_count") == ttft_before + 1

    assert wait_until(lambda: len(events_of(service_redis, IMPRESSIONS, auction_id)) == 1)
    [(event, _)] = events_of(service_redis, IMPRESSIONS, auction_id)
    assert event["cut_short"] is True
    assert event["shown_text"].startswith(shown)
    assert all(r["expected_payment"] == 0.0 and r["itctr"] is None for r in event["results"])
    assert len(event["samples"]) == 8
    assert all(s["finish_reason"] is None for s in event["samples"])  # none of the K finished
