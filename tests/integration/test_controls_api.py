"""The ad-platform controls through the real service and Redis: disclosure, brand safety, minors, budgets under
concurrency (no overspend beyond one click's price), frequency caps across two service processes, the admin API."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis

from service.clicks.tokens import ClickSigner, ClickTarget
from service.controls.store import today
from service.events.log import CLICKS
from service.security.keys import hash_key
from service.storage.redis import RedisServer
from tests.integration.conftest import Server, catalog_request, redis_db_url, running_service, wait_until

pytestmark = pytest.mark.engine

CONTROLS_DB = 2  # these servers share their own Redis database
ADMIN_KEY = "ak_test_admin_" + secrets.token_urlsafe(8)
SECRET = secrets.token_urlsafe(32)


def copy_marker(catalog: dict[str, Any], user: str, bid: float = 80.0, **options: Any) -> dict[str, Any]:
    request = catalog_request(catalog, n_ads=3, samples=6, max_tokens=40, seed=11, **options)
    request["user"] = {"id": user, "profile": {"age": 34, "interests": ["running"]}}
    request["ads"][0]["bid"] = bid
    request["ads"][0]["advertiser"] = {"id": "adv-cap", "name": "ArchGuard Inc."}
    target = request["ads"][0]
    marker = f"@{target['title']}@[{target['id']}]"
    request["query"] = f"Write one sentence recommending {marker} and keep the text {marker} unchanged."
    return request


@pytest.fixture(scope="module")
def controls_servers(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[list[Server]]:
    """Two service processes on one Redis database, with a frequency cap of 2 and an admin key."""
    url = redis_db_url(redis_server, CONTROLS_DB)
    SyncRedis.from_url(url).flushdb()
    env = {
        "AUCTION_FREQUENCY_CAP": "2",
        "AUCTION_API_KEYS": f"ops:{hash_key(ADMIN_KEY)}:admin",
        "AUCTION_SECRET_KEY": SECRET,
        "AUCTION_DEFAULT_MAX_TOKENS": "40",
    }
    with (
        running_service(tmp_path_factory.mktemp("controls-a"), url, **env) as a,
        running_service(tmp_path_factory.mktemp("controls-b"), url, **env) as b,
    ):
        yield [a, b]


@pytest.fixture
def controls_redis(redis_server: RedisServer) -> Iterator[SyncRedis]:
    connection = SyncRedis.from_url(redis_db_url(redis_server, CONTROLS_DB))
    yield connection
    connection.close()


def test_a_medical_emergency_or_a_minor_gets_no_ads_and_a_reason(client: httpx.Client, catalog: dict[str, Any]) -> None:
    request = catalog_request(catalog, n_ads=4, samples=2, max_tokens=16)
    request["query"] = "I have crushing chest pain and my left arm is numb, what should I do?"
    body = client.post("/v1/auctions", json=request).json()
    assert body["sensitive_topic"] == "health"
    assert body["ads"] == []
    assert {(a["id"], a["reason"]) for a in body["ineligible"]} == {
        (a["id"], "sensitive_topic") for a in request["ads"]
    }
    assert body["text"]  # the user still gets an answer, without ads

    teen = catalog_request(catalog, n_ads=4, samples=2, max_tokens=16)
    teen["user"] = {"id": "u-teen", "profile": {"age": 15, "interests": ["running"]}}
    body = client.post("/v1/auctions", json=teen).json()
    assert body["ads"] == []
    assert {a["reason"] for a in body["ineligible"]} == {"minor"}


def test_every_shown_ad_is_labelled_and_disclosed(
    client: httpx.Client, exposed_auction: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    request, body = exposed_auction
    result = body["ads"][0]
    assert f"[{request['ads'][0]['title']}]({result['click_url']}) (Sponsored)" in body["text"]
    assert result["sponsored"] is True
    assert result["advertiser"]  # on whose behalf (the ad id when no display name was sent)
    assert "No special-category profile data" in result["why"]


def test_the_label_streams_with_the_link(client: httpx.Client, catalog: dict[str, Any]) -> None:
    request = {**copy_marker(catalog, "u-stream"), "stream": True}  # the default rule: exposing samples preferred
    for seed in range(1, 13):
        request["options"]["seed"] = seed
        shown = ""
        with client.stream("POST", "/v1/auctions", json=request) as response:
            for line in response.iter_lines():
                if line.startswith("data: {") and '"choices"' in line:
                    shown += json.loads(line[6:])["choices"][0]["delta"].get("content", "")
        if "](" in shown:
            assert ") (Sponsored)" in shown
            return
    pytest.fail("no streamed answer showed the ad in 12 seeds")


def test_64_concurrent_clicks_never_overspend_and_each_is_billed_or_refused_once(
    controls_servers: list[Server], controls_redis: SyncRedis
) -> None:
    server = controls_servers[0]
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        assert http.put("/admin/advertisers/adv-budget", json={"daily_budget": 100.0}).status_code == 401
        set_ = http.put(
            "/admin/advertisers/adv-budget", json={"daily_budget": 100.0, "name": "Budget Co"}, headers=admin
        )
        assert set_.status_code == 200, set_.text
    signer = ClickSigner([SECRET], server.base_url, 3600)
    price = 10.0  # the budget covers exactly 10 clicks
    targets = [ClickTarget(f"budget-{i}", "Ad-7001", "https://example.com/x", price, "adv-budget") for i in range(64)]

    async def click_all() -> list[int]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as http:
            responses = await asyncio.gather(*(http.get(signer.url(t), follow_redirects=False) for t in targets))
        return [r.status_code for r in responses]

    statuses = asyncio.run(click_all())
    assert statuses == [302] * 64  # every user reaches the landing page, billed or not
    spent = float(controls_redis.get(f"spend:adv-budget:{today()}") or 0)
    assert spent <= 100.0 + price
    assert spent == pytest.approx(100.0)  # billed only while spend < budget: exactly 10 clicks

    def clicks() -> list[dict[str, Any]]:
        reply: Any = controls_redis.xrange(CLICKS)
        return [e for e in (json.loads(f[b"data"]) for _, f in reply) if e["auction_id"].startswith("budget-")]

    assert wait_until(lambda: len(clicks()) == 64)
    events = clicks()
    assert sum(e["billed"] for e in events) == 10
    assert {e["billing"] for e in events if not e["billed"]} == {"budget_exhausted"}
    assert len({e["auction_id"] for e in events}) == 64  # each counted once
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        view = http.get("/admin/advertisers/adv-budget", headers=admin).json()
        assert view["spent_today"] == pytest.approx(100.0)
        assert view["daily_budget_left"] == 0.0
        # A repeat of a billed click is not billed again.
        again = http.get(signer.url(targets[0]), follow_redirects=False)
        assert again.status_code == 302
    assert float(controls_redis.get(f"spend:adv-budget:{today()}") or 0) == pytest.approx(100.0)


def test_an_advertiser_whose_budget_is_spent_is_dropped_from_later_auctions(
    controls_servers: list[Server], catalog: dict[str, Any]
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    request = catalog_request(catalog, n_ads=3, samples=2, max_tokens=8)
    request["ads"][1]["advertiser"] = {"id": "adv-spent"}
    with httpx.Client(base_url=controls_servers[1].base_url, timeout=120) as http:
        http.put("/admin/advertisers/adv-spent", json={"daily_budget": 0.0}, headers=admin).raise_for_status()
        body = http.post("/v1/auctions", json=request).json()
    assert [a["id"] for a in body["ineligible"]] == [request["ads"][1]["id"]]
    assert body["ineligible"][0]["reason"] == "budget_exhausted"
    assert request["ads"][1]["id"] not in [a["id"] for a in body["ads"]]


def test_a_frequency_cap_of_2_holds_across_two_service_processes(
    controls_servers: list[Server], catalog: dict[str, Any], controls_redis: SyncRedis
) -> None:
    request = copy_marker(catalog, f"u-cap-{time.time_ns()}")
    ad_id = request["ads"][0]["id"]
    key = f"fcap:{request['user']['id']}:ad:{ad_id}"
    # A seed whose samples show the ad (probed for another user: same prompt, so the samples are then cached).
    with httpx.Client(base_url=controls_servers[0].base_url, timeout=120) as http:
        for seed in range(11, 19):
            probe = {**request, "user": {**request["user"], "id": f"u-probe-{seed}-{time.time_ns()}"}}
            probe["options"] = {**request["options"], "seed": seed}
            if any(
                a["id"] == ad_id and a["exposure_rate"] > 0.5
                for a in http.post("/v1/auctions", json=probe).json()["ads"]
            ):
                request["options"]["seed"] = seed
                break
        else:
            pytest.fail("no seed made the model copy the marker")
    shown = capped = 0
    for i in range(8):
        server = controls_servers[i % 2]  # alternate replicas: the cap lives in the shared Redis
        with httpx.Client(base_url=server.base_url, timeout=120) as http:
            body = http.post("/v1/auctions", json=request).json()
        if any(a["id"] == ad_id and a["exposed"] for a in body["ads"]):
            shown += 1
            count = shown

            def counted(count: int = count) -> bool:
                return int(controls_redis.get(key) or 0) == count

            assert wait_until(counted)  # counted against the cap (in the background)
        if any(a["id"] == ad_id and a["reason"] == "frequency_capped" for a in body["ineligible"]):
            capped += 1
            assert all(a["id"] != ad_id for a in body["ads"])  # dropped before the prompt, not shown then hidden
    assert shown == 2
    assert capped >= 1


def test_the_admin_api_needs_the_admin_scope(server: Server, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.get("/admin/advertisers/x")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"
