"""Helpers the benchmark scripts share (``scripts/benchmarks.py``, ``bench_engine_cores.py``, ``bench_repeats.py``,
``profile_hot_paths.py``): catalogue request bodies, starting the service, closed-loop and fixed-time load."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from service.data import catalog_context, request_body
from service.settings import PROJECT_ROOT


def body_for(i: int, n_ads: int = 8, samples: int = 4, max_tokens: int = 32, seed: int | None = None) -> dict[str, Any]:
    options = {"samples": samples, "max_tokens": max_tokens, "seed": seed if seed is not None else 10_000 + i}
    return request_body(catalog_context(i, n_ads), **options)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


@contextmanager
def bench_service(**extra: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The real service (``service.devtools.service_process.running_service``: a free port, a fresh key, Redis and
    spool in a temporary folder, no rate limit; ``extra``: more AUCTION_* or engine settings), ready; yields
    (base URL, process) and stops it afterwards."""
    import tempfile

    from service.devtools.service_process import running_service

    with (
        tempfile.TemporaryDirectory() as tmp,
        running_service(extra, Path(tmp), Path(tmp) / "service.log", startup_timeout_s=300) as service,
    ):
        yield service.base_url, service.process


def wait_ready(url: str, path: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not start")


async def closed_loop(url: str, bodies: list[dict[str, Any]], concurrency: int) -> tuple[float, list[float], int]:
    """``concurrency`` clients sending ``bodies`` one after another; (seconds, latencies, errors)."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                body = queue.get_nowait()
                t0 = time.perf_counter()
                response = await http.post("/v1/auctions", json=body)
                latencies.append(time.perf_counter() - t0)
                errors += response.status_code != 200

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0, latencies, errors


async def rate_for(url: str, body: dict[str, Any], seconds: float, concurrency: int) -> tuple[float, float]:
    """Requests per second of the same body for ``seconds``, and the p99 latency (ms)."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=concurrency)) as http:

        async def worker() -> None:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                response = await http.post("/v1/auctions", json=body)
                latencies.append(time.perf_counter() - t0)
                response.raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return len(latencies) / elapsed, pct(latencies, 0.99) * 1000


async def generated_tokens(http: httpx.AsyncClient) -> float:
    return metric((await http.get("/metrics")).text, "adauction_engine_generated_tokens_total")


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


BENCH_DIR = PROJECT_ROOT / "var" / "bench"


def save_results(name: str, data: dict[str, Any]) -> Path:
    """A benchmark's raw results as ``var/bench/<name>.json`` (what ``scripts/plot_bench.py`` reads)."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path
