"""Remote engine mode for real: the CPU build's OpenAI-compatible vLLM server, started by the tests, behind the
service in remote mode; results match the in-process engine for the same seed; dead servers are skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app, running
from service.engine.remote import RemoteVLLMEngine
from service.http.state import ServiceApp
from service.settings import DEFAULT_MODEL_DIR, Settings
from service.storage.redis import RedisServer, free_port
from tests.integration.conftest import ROOT, assert_seeds_forwarded, catalog_request, wait_until

pytestmark = pytest.mark.engine

REMOTE_DB = 2  # this module's service instances keep their events apart from the main test service


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


class VLLMServer:
    """The CPU build's OpenAI-compatible server as a process the tests can stop and start again."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "VLLM_HOST_IP": "127.0.0.1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "HF_HUB_OFFLINE": "1",
        }
        # The console script `vllm` is broken in vllm-cpu; the module entry point works (shared/notes/vllm-cpu.md).
        args = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(DEFAULT_MODEL_DIR), "--served-model-name", "smollm2-135m-instruct",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", "bfloat16", "--max-model-len", "4096", "--enforce-eager",
            "--no-enable-chunked-prefill", "--max-num-batched-tokens", "32768",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        if not wait_until(lambda: self.process is not None and self.process.poll() is None and _healthy(self.url), 300):
            pytest.fail(f"the vLLM server did not come up:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def vllm_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    server = VLLMServer(free_port(), tmp_path_factory.mktemp("vllm") / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def vllm_server(vllm_process: VLLMServer) -> str:
    return vllm_process.url


def remote_settings(urls: list[str], redis_server: RedisServer, tmp: Path) -> Settings:
    return Settings(
        environment="test",
        secret_key="r" * 40,
        engine="remote",
        remote_urls=urls,
        remote_health_interval_s=60,  # the tests drive health themselves
        redis_url=redis_server.url.rsplit("/", 1)[0] + f"/{REMOTE_DB}",
        spool_path=tmp / "spool.jsonl",
        relevance_floor=False,  # as the session's service (conftest), whose samples these are compared with
    )


@pytest.fixture
async def remote_app(
    vllm_server: str, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, list[str]]]:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]  # nothing listens there
    app = create_app(remote_settings([*dead, vllm_server], redis_server, tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://remote", timeout=120) as client:
            yield app, client, dead


async def test_remote_auction_matches_the_in_process_engine(
    remote_app: tuple[FastAPI, httpx.AsyncClient, list[str]], client: httpx.Client, catalog: dict[str, Any]
) -> None:
    _, remote, _ = remote_app
    request = catalog_request(catalog, query_index=30, samples=4, max_tokens=24, seed=4242, return_samples=True)
    via_server = (await remote.post("/v1/auctions", json=request)).json()
    in_process = client.post("/v1/auctions", json=request).json()  # the session's in-process service
    assert via_server["prompt_hash"] == in_process["prompt_hash"]
    assert_seeds_forwarded(via_server["sample_texts"], in_process["sample_texts"])


async def test_dead_servers_are_skipped_and_marked_down(
    remote_app: tuple[FastAPI, httpx.AsyncClient, list[str]], vllm_server: str, catalog: dict[str, Any]
) -> None:
    app, remote, dead = remote_app
    assert isinstance(app, ServiceApp)
    assert app.resources is not None
    engine = app.resources["engine"]
    assert isinstance(engine, RemoteVLLMEngine)
    assert engine.servers_up == [vllm_server]  # the start-up health poll found the dead ones
    failovers = 0
    for i in range(8):
        for url in dead:  # as if they had died after their last health check
            engine._up[url] = True
        request = catalog_request(catalog, query_index=i, samples=2, max_tokens=8, seed=i)
        response = await remote.post("/v1/auctions", json=request)
        assert response.status_code == 200, response.text[:300]
        failovers += sum(not engine._up[url] for url in dead)
    assert failovers > 0  # with 3 of 4 servers dead, a request meets a dead one first 3/4 of the time
    assert (await remote.get("/readyz")).status_code == 200


async def test_all_servers_down_is_a_clear_503(
    redis_server: RedisServer, tmp_path: Path, catalog: dict[str, Any]
) -> None:
    app = create_app(remote_settings([f"http://127.0.0.1:{free_port()}"], redis_server, tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://remote") as remote:
            response = await remote.post("/v1/auctions", json=catalog_request(catalog, samples=2, max_tokens=8))
            assert response.status_code == 503
            assert response.json()["error"]["type"] == "engine_unavailable"
            assert "no vLLM server" in response.json()["error"]["message"]
            assert (await remote.get("/readyz")).status_code == 503


async def test_a_server_that_dies_and_comes_back_is_used_again(
    vllm_process: VLLMServer, redis_server: RedisServer, tmp_path: Path, catalog: dict[str, Any]
) -> None:
    # Runs last in this module: it stops the shared vLLM server and starts it again.
    app = create_app(remote_settings([vllm_process.url], redis_server, tmp_path))
    async with running(app) as state:
        engine = state["engine"]
        assert isinstance(engine, RemoteVLLMEngine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://remote", timeout=120) as remote:
            vllm_process.stop()
            down = await remote.post("/v1/auctions", json=catalog_request(catalog, 33, samples=2, max_tokens=8, seed=1))
            assert down.status_code == 503
            assert (await remote.get("/readyz")).status_code == 503
            vllm_process.start()
            await engine.poll_health()  # what the background poll does every AUCTION_REMOTE_HEALTH_INTERVAL_S
            assert (await remote.get("/readyz")).status_code == 200
            up = await remote.post("/v1/auctions", json=catalog_request(catalog, 33, samples=2, max_tokens=8, seed=1))
            assert up.status_code == 200, up.text[:300]
