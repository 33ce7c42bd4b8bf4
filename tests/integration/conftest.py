"""One real service process for the whole session: ``python -m service serve`` on the real vLLM CPU engine
with the default model, reached over HTTP on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis

from service.data import catalog as bundled_catalog
from service.data import catalog_ad, profile_of, request_body
from service.devtools import service_process
from service.devtools.service_process import ServiceProcess
from service.mechanism.types import AuctionContext
from service.storage.redis import RedisServer

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 300
GENERATION_TIMEOUT_S = 30

Server = ServiceProcess  # the service process the suites drive

SERVICE_DB = 1  # the service's Redis database; the Redis-only suites use db 0


def redis_db_url(redis_server: RedisServer, db: int) -> str:
    return redis_server.url.rsplit("/", 1)[0] + f"/{db}"


@contextmanager
def running_service(workdir: Path, redis_url: str, **overrides: str) -> Iterator[Server]:
    """``python -m service serve`` on a free port with test settings (``overrides``: more AUCTION_* variables),
    ready to serve; stopped with SIGTERM afterwards (unless the test already stopped it)."""
    env = {
        "AUCTION_ENVIRONMENT": "test",
        "AUCTION_MODEL_VERSION": "base",  # these suites pin the bundled model; trained versions: tests/training
        # ... and its whole marker grammar: their requests ask the model to copy a candidate's marker whatever the
        # question; the floor is tested through the shipped version (test_relevance_floor.py)
        "AUCTION_RELEVANCE_FLOOR": "false",
        "AUCTION_DEFAULT_SAMPLES": "4",
        "AUCTION_DEFAULT_MAX_TOKENS": "24",
        "AUCTION_GENERATION_TIMEOUT_S": str(GENERATION_TIMEOUT_S),
        "AUCTION_LOG_LEVEL": "info",
        "REDIS_URL": redis_url,
        "AUCTION_EVENT_RETRY_INTERVAL_S": "0.5",
        **overrides,
    }
    try:
        with service_process.running_service(env, workdir, workdir / "serve.log", STARTUP_TIMEOUT_S) as srv:
            yield srv
    except service_process.ServiceStartError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Server]:
    with running_service(tmp_path_factory.mktemp("server"), redis_db_url(redis_server, SERVICE_DB)) as srv:
        yield srv


@pytest.fixture
def service_redis(redis_server: RedisServer) -> Iterator[SyncRedis]:
    """A client on the service's Redis database (restarting the server if a test left it stopped)."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    connection = SyncRedis.from_url(redis_db_url(redis_server, SERVICE_DB))
    yield connection
    connection.close()


def clear_sample_cache(redis: SyncRedis) -> None:
    """Make the next auction generate for real (tests of the engine itself)."""
    keys = list(redis.scan_iter("samples:*"))
    if keys:
        redis.delete(*keys)


def events_of(redis: SyncRedis, stream: str, auction_id: str) -> list[tuple[dict[str, Any], bool]]:
    """(event, flagged duplicate) for every entry of ``stream`` about ``auction_id``."""
    reply: Any = redis.xrange(stream)
    out = []
    for _, fields in reply:
        event = json.loads(fields[b"data"])
        if event["auction_id"] == auction_id:
            out.append((event, fields[b"dup"] == b"1"))
    return out


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        yield http


@pytest.fixture(scope="session")
def catalog() -> dict[str, Any]:
    return bundled_catalog()


def catalog_request(catalog: dict[str, Any], n_ads: int = 6, query_index: int = 0, **options: Any) -> dict[str, Any]:
    """An auction request built from the shared catalogue: a query, a profile and ``n_ads`` ads with bids."""
    user_id, profile = profile_of(catalog["profiles"][query_index % len(catalog["profiles"])])
    ads = tuple(catalog_ad(ad, float(sum(ad["typical_bid"]) / 2 + i)) for i, ad in enumerate(catalog["ads"][:n_ads]))
    context = AuctionContext(catalog["queries"][query_index]["query"], user_id, profile, ads)
    return request_body(context, **options)


@pytest.fixture(scope="session")
def exposed_auction(server: Server, catalog: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request, response) of a real auction whose served answer exposes ``request["ads"][0]``.

    The untrained model rarely places ads, so the query asks it to copy a marker (DESIGN.md §7). Find a seed whose
    K samples expose the ad, then repeat that auction until the uniform draw serves an exposing sample.
    """
    request = catalog_request(catalog, n_ads=4, samples=8, max_tokens=48)
    target = request["ads"][0]
    marker = f"@{target['title']}@[{target['id']}]"
    request["query"] = f"Write one sentence recommending {marker} and keep the text {marker} unchanged."
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        for seed in range(1, 9):
            request["options"]["seed"] = seed
            body = http.post("/v1/auctions", json=request).json()
            if body["ads"][0]["exposure_rate"] > 0:
                break
        else:
            pytest.fail("the model never copied the marker in 8×8 samples")
        for _ in range(30):  # repeats are sample-cache hits: each is a fresh uniform draw among the same K
            if body["ads"][0]["exposed"]:
                return request, body
            body = http.post("/v1/auctions", json=request).json()
    pytest.fail("30 uniform draws never served one of the exposing samples")


def _common_prefix(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def assert_mostly_reproduced(first: list[str], second: list[str]) -> None:
    """Seeded sampling on this CPU build reproduces the K samples only up to numerics: the same seed gives the
    same random draws, but bf16 CPU kernels give slightly different logits with a different batch shape (a
    fresh prefill, a prefix-cache hit, the K children scheduled apart), so a near-tie can flip one token and
    the sample goes its own way from there. Measured on clean-clone CI runs: 3 of 4 samples identical, then
    2 of 4 with the other two agreeing on their first ~60 characters (even with both runs reading the prompt
    from the prefix cache). So the test asks for what the seed controls, the samples' openings: on average
    each pair shares at least half its text as a common prefix, and one pair is identical. With a lost seed the
    pairs would be independent samples, which at temperature 1 rarely repeat a 24-token sample whole."""
    assert len(first) == len(second)
    shared = [_common_prefix(a, b) / max(len(a), len(b), 1) for a, b in zip(first, second, strict=True)]
    assert sum(shared) / len(shared) >= 0.5, (shared, first, second)
    assert any(a == b for a, b in zip(first, second, strict=True)), (first, second)


def assert_seeds_forwarded(first: list[str], second: list[str]) -> None:
    """Two engines (a vLLM server and the in-process engine) given the same seed share samples only up to
    numerics (here 1 of 4 identical); with different seeds no two 24-token samples would be identical, so one
    identical sample shows the seeds and sampling parameters arrive unchanged."""
    assert len(first) == len(second)
    assert any(a == b for a, b in zip(first, second, strict=True)), (first, second)


def wait_until(check: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
