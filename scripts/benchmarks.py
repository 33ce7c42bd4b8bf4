"""Benchmark harness: every figure is measured side by side in one run on this machine, and printed.

1. generation: one engine request with n=K against K separate n=1 requests for the same prompt (what
   generate-then-auction designs pay), sent concurrently and one after another, K ∈ {1, 4, 8, 16};
2. service overhead: a whole auction through the HTTP app against the engine call alone, same auctions;
3. cache-hit auctions per second against a trivial FastAPI endpoint taking a body of the same size (the ceiling
   of the web stack here), same client, same concurrency;
4. scaling: auctions/s and p50/p99 latency at 1, 2, 4, 8 and 16 concurrent clients (fresh contexts);
5. cost growth: latency against the number of candidate ads (5, 20, 50, 100) and against max_tokens;
6. saturation: auctions/s of the whole service (HTTP app, engine, CTR, selection, events) against the engine
   alone at the same concurrency (8), fresh contexts, 5 alternating runs, medians.

Parts 1–2 and 6 run the engine in this process; parts 3–5 start the service (``python -m service serve``) and talk
to it over HTTP on loopback. Results also go to var/bench/results.json.

    .venv/bin/python scripts/benchmarks.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from service.app import create_app, running
from service.auctions.schemas import AuctionRequest
from service.devtools.bench import (
    bench_service,
    body_for,
    closed_loop,
    generated_tokens,
    pct,
    rate_for,
    start,
    wait_ready,
)
from service.engine.base import Engine, SamplingRequest
from service.settings import PROJECT_ROOT, Settings
from service.storage.redis import free_port

RESULTS: dict[str, Any] = {}
PARTS: set[int] = {1, 2, 3, 4, 5, 6}


# -- 1 and 2: in-process --------------------------------------------------------------------------------------


async def generation_and_overhead(quick: bool) -> None:
    app = create_app(Settings(secret_key=secrets.token_urlsafe(32), environment="test", sample_cache_ttl_s=0))
    async with running(app) as state:
        engine: Engine = state["engine"]
        service = state["auctions"]
        prepared = service.prepare(AuctionRequest.model_validate(body_for(0)), "bench-warm")
        ids = prepared.token_ids
        await engine.generate(ids, SamplingRequest(4, 16, 0.7, 0.8, 1), "warm")

        print("\n1. Generation: one request with n=K vs K separate requests (same prompt, 64 tokens each)")
        print(f"{'K':>3} {'n=K s':>7} {'K concurrent s':>15} {'K sequential s':>15} {'conc/n=K':>9} {'seq/n=K':>8}")
        rows = []
        for k in (1, 4, 8, 16) if not quick else (1, 4):
            t0 = time.perf_counter()
            await engine.generate(ids, SamplingRequest(k, 64, 0.7, 0.8, 100 + k), f"n{k}")
            one = time.perf_counter() - t0
            t0 = time.perf_counter()
            await asyncio.gather(
                *(engine.generate(ids, SamplingRequest(1, 64, 0.7, 0.8, 200 + 64 * i), f"c{k}-{i}") for i in range(k))
            )
            concurrent = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(k):
                await engine.generate(ids, SamplingRequest(1, 64, 0.7, 0.8, 300 + 64 * i), f"s{k}-{i}")
            sequential = time.perf_counter() - t0
            rows.append({"k": k, "n_equals_k_s": one, "concurrent_s": concurrent, "sequential_s": sequential})
            print(f"{k:>3} {one:>7.2f} {concurrent:>15.2f} {sequential:>15.2f} {concurrent / one:>9.2f} "
                  f"{sequential / one:>8.2f}")  # fmt: skip
        RESULTS["generation"] = rows

        print("\n2. Service overhead: whole auction through the HTTP app vs the engine call alone (K=8, 128 tokens)")
        transport = httpx.ASGITransport(app=app)
        e2e, alone, in_app = [], [], []
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as http:
            for i in range(2 if quick else 4):
                body = body_for(i, samples=8, max_tokens=128)
                prepared = service.prepare(AuctionRequest.model_validate(body), f"bench-{i}")
                t0 = time.perf_counter()
                response = (await http.post("/v1/auctions", json=body)).json()
                e2e.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await engine.generate(prepared.token_ids, prepared.sampling, f"alone-{i}")
                alone.append(time.perf_counter() - t0)
                in_app.append(response["timings_ms"]["total"] - response["timings_ms"]["generate"])
        RESULTS["overhead"] = {"e2e_s": e2e, "engine_s": alone, "in_app_non_generation_ms": in_app}
        share = statistics.median(in_app) / 1000 / statistics.median(alone) * 100
        print(
            f"median auction {statistics.median(e2e):.2f} s, engine alone {statistics.median(alone):.2f} s, "
            f"service work outside generation {statistics.median(in_app):.1f} ms ({share:.2f} % of the engine time)"
        )


async def saturation(quick: bool, clients: int = 8, runs: int = 5) -> None:
    """Part 6: the service's auctions/s at saturation ÷ the engine's own requests/s for the same prompts and
    sampling (K=4, 32 tokens), both at ``clients`` concurrent requests, fresh contexts (sample cache off). The
    engine arm tokenizes with the service's own ``prepare`` (the same token ids), then calls the engine."""
    settings = Settings(secret_key=secrets.token_urlsafe(32), environment="test", sample_cache_ttl_s=0,
                        rate_limit_per_minute=0, max_auctions_in_flight=64)  # fmt: skip
    app = create_app(settings)
    async with running(app) as state:
        engine: Engine = state["engine"]
        service = state["auctions"]
        n = clients if quick else 2 * clients
        rates: dict[str, list[float]] = {"service": [], "engine": []}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b", timeout=600) as http:

            async def through_service(body: dict[str, Any], request_id: str) -> None:
                (await http.post("/v1/auctions", json=body)).raise_for_status()

            async def engine_alone(body: dict[str, Any], request_id: str) -> None:
                prepared = service.prepare(AuctionRequest.model_validate(body), request_id)
                await engine.generate(prepared.token_ids, prepared.sampling, request_id)

            arms = {"service": through_service, "engine": engine_alone}

            async def run(name: str, seed: int) -> float:
                gate = asyncio.Semaphore(clients)

                async def one(j: int) -> None:
                    async with gate:
                        await arms[name](body_for(j, samples=4, max_tokens=32, seed=seed + j), f"sat-{seed + j}")

                t0 = time.perf_counter()
                await asyncio.gather(*(one(j) for j in range(n)))
                return n / (time.perf_counter() - t0)

            await run("service", 89_000)  # warm-up, not counted
            print(f"\n6. Saturation: the service vs the engine alone ({clients} concurrent, {n} fresh contexts a run, "
                  f"K=4, 32 tokens, alternating runs)")  # fmt: skip
            seed = 90_000
            for i in range(runs if not quick else 2):
                for name in ("service", "engine") if i % 2 == 0 else ("engine", "service"):
                    rates[name].append(await run(name, seed))
                    seed += n
        ratio = statistics.median(rates["service"]) / statistics.median(rates["engine"])
        per_run = [s / e for s, e in zip(rates["service"], rates["engine"], strict=True)]
        RESULTS["saturation"] = {"clients": clients, "contexts_per_run": n, "rates": rates, "ratio": ratio,
                                 "per_run_ratios": per_run}  # fmt: skip
        print(f"service {statistics.median(rates['service']):.2f} auctions/s, engine alone "
              f"{statistics.median(rates['engine']):.2f} requests/s: ratio {ratio:.2f} (target ≥ 0.95; runs "
              f"{min(per_run):.2f}–{max(per_run):.2f})")  # fmt: skip


# -- 3 to 5: over HTTP --------------------------------------------------------------------------------------------

TRIVIAL_APP = """
from typing import Any
from fastapi import FastAPI
app = FastAPI()
@app.post("/v1/auctions")
async def auctions(body: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "ads": len(body.get("ads", []))}
"""


async def over_http(quick: bool) -> None:
    with bench_service(AUCTION_MAX_AUCTIONS_IN_FLIGHT="64") as (url, _service), tempfile.TemporaryDirectory() as tmp:
        trivial_port = free_port()
        (Path(tmp) / "trivial_app.py").write_text(TRIVIAL_APP)
        trivial = start([sys.executable, "-m", "uvicorn", "trivial_app:app", "--port", str(trivial_port),
                         "--log-level", "warning", "--no-access-log", "--app-dir", tmp], dict(os.environ),
                        Path(tmp) / "trivial.log")  # fmt: skip
        trivial_url = f"http://127.0.0.1:{trivial_port}"
        try:
            wait_ready(trivial_url, "/docs")

            if 3 in PARTS:
                print(
                    "\n3. Cache-hit auctions vs a trivial FastAPI endpoint (same body, 16 clients, 5 alternating runs)"
                )
                body = body_for(1, n_ads=8, samples=8, max_tokens=32)
                body["options"].pop("seed")  # unseeded: one cache entry for the context
                async with httpx.AsyncClient(base_url=url, timeout=120) as http:
                    first = (await http.post("/v1/auctions", json=body)).json()
                    await asyncio.sleep(0.5)  # the cache write is in the background
                    assert (await http.post("/v1/auctions", json=body)).json()["cache_hit"], "no cache hit"
                size = len(json.dumps(body))
                seconds = 2 if quick else 4
                runs: dict[str, list[tuple[float, float]]] = {"auction": [], "trivial": []}
                for i in range(5):  # alternating order, medians of 5 runs
                    for name in ("auction", "trivial") if i % 2 == 0 else ("trivial", "auction"):
                        runs[name].append(await rate_for(url if name == "auction" else trivial_url, body, seconds, 16))
                hits = statistics.median(r for r, _ in runs["auction"])
                hits_p99 = statistics.median(p for _, p in runs["auction"])
                plain = statistics.median(r for r, _ in runs["trivial"])
                plain_p99 = statistics.median(p for _, p in runs["trivial"])
                RESULTS["cache_hits"] = {"body_bytes": size, "auction_rps": hits, "auction_p99_ms": hits_p99,
                                         "trivial_rps": plain, "trivial_p99_ms": plain_p99, "runs": runs,
                                         "generation_ms": first["timings_ms"]["generate"]}  # fmt: skip
                print(f"body {size} bytes: cache-hit auctions {hits:.0f}/s (p99 {hits_p99:.0f} ms), trivial endpoint "
                      f"{plain:.0f}/s (p99 {plain_p99:.0f} ms): ratio {hits / plain:.2f}; the uncached auction took "
                      f"{first['timings_ms']['generate'] / 1000:.1f} s of generation")  # fmt: skip

            if 4 in PARTS:
                print("\n4. Scaling on the default engine: fresh contexts, K=4, 32 tokens")
                print(f"{'clients':>7} {'auctions':>8} {'auctions/s':>10} {'p50 s':>6} {'p99 s':>6} {'errors':>6}")
                rows = []
                seed = 50_000
                for c in (1, 2, 4, 8, 16) if not quick else (1, 4):
                    n = max(4, 2 * c)
                    bodies = [body_for(i, samples=4, max_tokens=32, seed=seed + i) for i in range(n)]
                    seed += n
                    elapsed, lat, errors = await closed_loop(url, bodies, c)
                    rows.append({"clients": c, "auctions": n, "per_s": n / elapsed, "p50_s": pct(lat, 0.5),
                                 "p99_s": pct(lat, 0.99), "errors": errors})  # fmt: skip
                    print(
                        f"{c:>7} {n:>8} {n / elapsed:>10.2f} {pct(lat, 0.5):>6.2f} {pct(lat, 0.99):>6.2f} {errors:>6}"
                    )
                RESULTS["scaling"] = rows

            if 5 in PARTS:
                print("\n5. Cost growth (one client, K=4): candidate ads at 32 tokens, then max_tokens with 8 ads")
                print(f"{'ads':>5} {'prompt tokens':>13} {'latency s':>9}")
                rows = []
                async with httpx.AsyncClient(base_url=url, timeout=600) as http:
                    for n_ads in (5, 20, 50, 100):
                        body = body_for(3, n_ads=n_ads, samples=4, max_tokens=32, seed=seed)
                        seed += 1
                        t0 = time.perf_counter()
                        response = await http.post("/v1/auctions", json=body)
                        latency = time.perf_counter() - t0
                        response.raise_for_status()
                        prompt_tokens = response.json()["prompt_tokens"]
                        rows.append({"ads": n_ads, "latency_s": latency, "prompt_tokens": prompt_tokens})
                        print(f"{n_ads:>5} {prompt_tokens:>13} {latency:>9.2f}")
                    RESULTS["ads_growth"] = rows
                    print(f"{'max_tokens':>10} {'latency s':>9} {'tokens':>7} {'tokens/s':>8}")
                    rows = []
                    for max_tokens in (16, 32, 64, 128, 256) if not quick else (16, 64):
                        body = body_for(4, n_ads=8, samples=4, max_tokens=max_tokens, seed=seed)
                        seed += 1
                        before = await generated_tokens(http)
                        t0 = time.perf_counter()
                        (await http.post("/v1/auctions", json=body)).raise_for_status()
                        latency = time.perf_counter() - t0
                        tokens = await generated_tokens(http) - before
                        rows.append({"max_tokens": max_tokens, "latency_s": latency, "tokens": tokens})
                        print(f"{max_tokens:>10} {latency:>9.2f} {tokens:>7.0f} {tokens / latency:>8.0f}")
                    RESULTS["max_tokens_growth"] = rows
        finally:
            trivial.terminate()
            trivial.wait(60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer points, for a smoke run")
    parser.add_argument("--parts", default="1,2,3,4,5,6", help="which parts to run, e.g. 3 (cache hits alone)")
    args = parser.parse_args()
    quick = args.quick
    PARTS.clear()
    PARTS.update(int(x) for x in args.parts.split(","))
    started = time.perf_counter()
    if PARTS & {1, 2}:
        asyncio.run(generation_and_overhead(quick))
    if PARTS & {3, 4, 5}:
        asyncio.run(over_http(quick))
    if 6 in PARTS:
        asyncio.run(saturation(quick))
    out = PROJECT_ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, **RESULTS}, indent=2))  # a partial run updates its own parts
    print(f"\nall benchmarks: {time.perf_counter() - started:.0f} s; results in {out / 'results.json'}")
