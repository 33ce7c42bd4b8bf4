"""Reliability and security with real processes: API keys, rate limits, body limits, overload, fuzzing from the
OpenAPI schema, Redis killed during a burst, SIGTERM during traffic, and an engine crash."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis
from schemathesis.checks import not_a_server_error, positive_data_acceptance
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from service.events.log import CLICKS, IMPRESSIONS
from service.security.keys import hash_key
from service.storage.redis import RedisServer
from tests.integration.conftest import (
    Server,
    catalog_request,
    events_of,
    redis_db_url,
    running_service,
    wait_until,
)

pytestmark = pytest.mark.engine

NEGATIVE = GenerationMode.NEGATIVE

GUARDED_DB = 3
KEYS = {"client": "ak_client_key_0123456789", "burst": "ak_burst_key_0123456789", "ops": "ak_ops_key_012345678"}
ENTRIES = [
    f"client:{hash_key(KEYS['client'])}:auctions:0",  # unlimited
    f"burst:{hash_key(KEYS['burst'])}:auctions:6",  # 6 per minute, bursts of 3 (service-wide burst)
    f"ops:{hash_key(KEYS['ops'])}:metrics",
]
CLIENT = {"Authorization": f"Bearer {KEYS['client']}"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Server]:
    with running_service(
        tmp_path_factory.mktemp("guarded"),
        redis_db_url(redis_server, GUARDED_DB),
        AUCTION_AUTH_REQUIRED="true",
        AUCTION_API_KEYS=",".join(ENTRIES),
        AUCTION_METRICS_REQUIRE_KEY="true",
        AUCTION_RATE_LIMIT_PER_MINUTE="600",
        AUCTION_RATE_LIMIT_BURST="3",
        AUCTION_MAX_AUCTIONS_IN_FLIGHT="2",
        # Well above a 48-token generation on a loaded 2-core CI box (the SIGTERM test's auctions must finish).
        AUCTION_GENERATION_TIMEOUT_S="30",
        AUCTION_MAX_BODY_BYTES="65536",
        AUCTION_DEFAULT_SAMPLES="2",
        AUCTION_DEFAULT_MAX_TOKENS="16",
    ) as srv:
        yield srv


def small_auction(catalog: dict[str, Any], i: int = 0, **options: Any) -> dict[str, Any]:
    return catalog_request(catalog, n_ads=3, query_index=i, **{"samples": 2, "max_tokens": 8, **options})


def test_auctions_need_a_valid_key_with_the_auctions_scope(guarded: Server, catalog: dict[str, Any]) -> None:
    body = small_auction(catalog)
    with httpx.Client(base_url=guarded.base_url, timeout=60) as http:
        missing = http.post("/v1/auctions", json=body)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.json()["error"]["type"] == "unauthorized"
        wrong = http.post("/v1/auctions", json=body, headers={"Authorization": "Bearer ak_not_a_key"})
        assert wrong.status_code == 401
        metrics_only = http.post("/v1/auctions", json=body, headers={"X-API-Key": KEYS["ops"]})
        assert metrics_only.status_code == 403
        assert metrics_only.json()["error"]["type"] == "forbidden"
        assert http.post("/v1/auctions", json=body, headers=CLIENT).status_code == 200
        assert http.post("/v1/auctions", json=body, headers={"X-API-Key": KEYS["client"]}).status_code == 200


def test_metrics_are_restricted_and_clicks_stay_public(guarded: Server) -> None:
    with httpx.Client(base_url=guarded.base_url) as http:
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers=CLIENT).status_code == 403
        ops = http.get("/metrics", headers={"Authorization": f"Bearer {KEYS['ops']}"})
        assert ops.status_code == 200
        assert "adauction_auth_failures_total" in ops.text
        # Click links carry their own signature: no key needed (a forged one is a 404, not a 401).
        assert http.get("/c/forged.token.value").status_code == 404
        assert http.get("/healthz").status_code == 200


def test_rate_limit_is_per_key_shared_through_redis(
    guarded: Server, redis_server: RedisServer, catalog: dict[str, Any]
) -> None:
    burst = {"Authorization": f"Bearer {KEYS['burst']}"}
    with httpx.Client(base_url=guarded.base_url) as http:
        statuses = [http.post("/v1/auctions", json={"query": ""}, headers=burst) for _ in range(5)]
        assert [r.status_code for r in statuses[:3]] == [422, 422, 422]  # the burst passes (invalid, cheap)
        limited = statuses[3]
        assert limited.status_code == 429
        assert limited.json()["error"]["type"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        # Another key is not affected.
        assert http.post("/v1/auctions", json={"query": ""}, headers=CLIENT).status_code == 422
    state = SyncRedis.from_url(redis_db_url(redis_server, GUARDED_DB))
    assert state.exists("rl:key:burst")  # the limiter's state lives in Redis, shared by every replica


def test_oversized_bodies_get_413(guarded: Server, catalog: dict[str, Any]) -> None:
    big = small_auction(catalog)
    big["user"]["profile"] = {"notes": "x" * 70_000}
    with httpx.Client(base_url=guarded.base_url) as http:
        declared = http.post("/v1/auctions", json=big, headers=CLIENT)
        assert declared.status_code == 413
        assert declared.json()["error"]["type"] == "payload_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it arrives
            yield b'{"query": "' + b"x" * 40_000
            yield b"y" * 40_000 + b'"}'

        chunked = http.post("/v1/auctions", content=chunks(), headers={**CLIENT, "Content-Type": "application/json"})
        assert chunked.status_code == 413


async def test_overload_is_refused_fast_and_admitted_auctions_succeed(guarded: Server, catalog: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=guarded.base_url, timeout=120, headers=CLIENT) as http:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(http.post("/v1/auctions", json=small_auction(catalog, i, max_tokens=48)) for i in range(8))
        )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 503}, statuses
        refused = [r for r in responses if r.status_code == 503]
        assert refused, "8 concurrent auctions with a limit of 2 in flight: some must be refused"
        assert all(r.json()["error"]["type"] == "overloaded" and r.headers["retry-after"] for r in refused)
        assert statuses.count(200) >= 2
        assert all(r.json()["samples"] == 2 for r in responses if r.status_code == 200)
        assert (await http.get("/readyz")).status_code == 200
        assert time.monotonic() - started < 60


def test_fuzzing_from_the_openapi_schema_finds_no_server_error(guarded: Server) -> None:
    """Every documented operation, fed with schema-driven cases (valid and invalid): no 500, every response
    documented and shaped as documented."""
    schema = schemathesis.openapi.from_url(f"{guarded.base_url}/openapi.json")
    statuses: list[int] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(operation.as_strategy(), operation.as_strategy(generation_mode=NEGATIVE)))
        def run(case: Any) -> None:
            # Schema-valid requests may still be refused (duplicate ad ids, prompts too long for the model), so
            # "valid data must be accepted" does not hold here; our own check replaces the generic 5xx one,
            # which would also flag the documented 503 (overload) and 504 (generation timeout).
            # A schema-valid auction may ask for the largest K and max_tokens: on a loaded 2-core box that runs
            # past schemathesis's 10 s read timeout but inside the server's own 30 s generation timeout (a
            # documented 504), so the client waits longer than the server does.
            response = case.call_and_validate(
                headers=CLIENT, excluded_checks=[positive_data_acceptance, not_a_server_error], timeout=90
            )
            assert response.status_code not in {500, 502}, response.text[:500]
            statuses.append(response.status_code)

        run()
    assert len(statuses) >= 60
    assert 500 not in statuses
    print(f"fuzzing: {len(statuses)} cases, statuses {dict(sorted(Counter(statuses).items()))}")


async def test_redis_killed_during_a_burst_loses_and_duplicates_nothing(
    server: Server,
    redis_server: RedisServer,
    service_redis: SyncRedis,
    catalog: dict[str, Any],
    exposed_auction: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    click_url = exposed_auction[1]["ads"][0]["click_url"]
    clicks_before = len(events_of(service_redis, CLICKS, exposed_auction[1]["auction_id"]))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as http:

        async def auction(i: int) -> httpx.Response:
            return await http.post(
                "/v1/auctions", json=catalog_request(catalog, query_index=i, samples=2, max_tokens=32)
            )

        async def clicks() -> list[int]:
            statuses = []
            for _ in range(6):
                statuses.append((await http.get(click_url)).status_code)
                await asyncio.sleep(0.3)
            return statuses

        async def crash_and_restart() -> None:
            await asyncio.sleep(0.8)
            redis_server.kill()  # kill -9 in the middle of the burst
            await asyncio.sleep(2.0)
            redis_server.start()

        results = await asyncio.gather(*(auction(i) for i in range(10)), clicks(), crash_and_restart())
    responses = [r for r in results[:10] if isinstance(r, httpx.Response)]
    assert [r.status_code for r in responses] == [200] * 10
    assert results[10] == [302] * 6
    ids = [r.json()["auction_id"] for r in responses]
    assert wait_until(lambda: all(len(events_of(service_redis, IMPRESSIONS, a)) == 1 for a in ids), seconds=30)
    assert wait_until(
        lambda: len(events_of(service_redis, CLICKS, exposed_auction[1]["auction_id"])) == clicks_before + 6,
        seconds=30,
    )
    time.sleep(2)  # nothing more may arrive: exactly once
    assert all(len(events_of(service_redis, IMPRESSIONS, a)) == 1 for a in ids)
    assert len(events_of(service_redis, CLICKS, exposed_auction[1]["auction_id"])) == clicks_before + 6


async def test_sigterm_finishes_in_flight_auctions_and_logs_them(
    guarded: Server, redis_server: RedisServer, catalog: dict[str, Any]
) -> None:
    # Runs last against the guarded server: it stops it.
    async with httpx.AsyncClient(base_url=guarded.base_url, timeout=120, headers=CLIENT) as http:
        in_flight = [
            asyncio.create_task(http.post("/v1/auctions", json=small_auction(catalog, 30 + i, max_tokens=48)))
            for i in range(2)
        ]
        await asyncio.sleep(1.0)
        guarded.process.send_signal(signal.SIGTERM)
        responses = await asyncio.gather(*in_flight)
        assert [r.status_code for r in responses] == [200, 200]  # finished, not dropped
        await asyncio.sleep(0.5)
        with pytest.raises(httpx.TransportError):
            await http.get("/healthz")  # no new connections
    # A clean exit: uvicorn finishes its shutdown, then re-raises the SIGTERM it caught (exit status -15).
    assert guarded.process.wait(timeout=60) in {0, -signal.SIGTERM}
    assert "Application shutdown complete." in guarded.log_path.read_text()
    state = SyncRedis.from_url(redis_db_url(redis_server, GUARDED_DB))
    for r in responses:
        assert len(events_of(state, IMPRESSIONS, r.json()["auction_id"])) == 1


def test_engine_crash_turns_readiness_and_liveness_off_with_clear_503s(
    tmp_path: Path, redis_server: RedisServer, catalog: dict[str, Any]
) -> None:
    with running_service(tmp_path, redis_db_url(redis_server, GUARDED_DB)) as srv:
        engine_processes = psutil.Process(srv.process.pid).children(recursive=True)
        assert engine_processes
        for child in engine_processes:
            child.kill()  # EngineCore and its worker die
        assert wait_until(lambda: httpx.get(f"{srv.base_url}/readyz").status_code == 503, seconds=30)
        with httpx.Client(base_url=srv.base_url, timeout=30) as http:
            # A context never seen before (not in the sample cache, which would still answer without the engine).
            auction = http.post("/v1/auctions", json=small_auction(catalog, 40, seed=777_001))
            assert auction.status_code == 503, auction.text[:300]
            assert auction.json()["error"]["type"] == "engine_unavailable"
            health = http.get("/healthz")
            assert health.status_code == 503  # the orchestrator restarts the process
            assert "restarted" in health.json()["error"]["message"]
