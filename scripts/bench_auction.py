"""Benchmark: one auction at K samples, end to end through the HTTP app, next to the engine call alone.

Starts the real app in-process (its lifespan opens the real vLLM engine), then for each of N catalogue contexts
runs, interleaved: (a) the full auction through the ASGI app (validation, prompt, engine, mechanism, rendering,
JSON), and (b) the engine call alone on the same prompt tokens and seed. Prints per-run figures, medians and
the service's overhead as a fraction of the engine time. Usage:

    .venv/bin/python scripts/bench_auction.py [--runs 5] [--samples 8] [--max-tokens 128] [--ads 8]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from typing import Any

import httpx

from service.api.protocol import AuctionRequest
from service.api.serving import to_context
from service.config import Settings
from service.data import catalog
from service.engine.base import SamplingRequest
from service.main import create_app
from service.mechanism.prompt import build_prompt


def request_for(i: int, n_ads: int, samples: int, max_tokens: int) -> dict[str, Any]:
    data = catalog()
    query = data["queries"][i % len(data["queries"])]
    profile = data["profiles"][i % len(data["profiles"])]
    matching = [a for a in data["ads"] if a["category"] == query["category"]]
    others = [a for a in data["ads"] if a["category"] != query["category"]]
    ads = (matching + others)[:n_ads]
    return {
        "query": query["query"],
        "user": {"id": profile["id"], "profile": {k: v for k, v in profile.items() if k != "id"}},
        "ads": [{"id": a["id"], "title": a["title"], "url": a["url"], "bid": float(a["typical_bid"][1])} for a in ads],
        "options": {"samples": samples, "max_tokens": max_tokens, "seed": 1000 + i},
    }


async def main(runs: int, samples: int, max_tokens: int, n_ads: int) -> None:
    app = create_app(Settings(secret_key=secrets.token_urlsafe(32), environment="test"))
    started = time.perf_counter()
    async with app.router.lifespan_context(app):
        print(f"engine start-up: {time.perf_counter() - started:.1f} s")
        engine = app.state.engine
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as http:
            warm = request_for(99, n_ads, samples, max_tokens)
            (await http.post("/v1/auctions", json=warm)).raise_for_status()  # first request warms caches

            e2e, engine_only, tokens, in_app = [], [], [], []
            print(f"K={samples} max_tokens={max_tokens} ads={n_ads}")
            print(
                f"{'run':>3} {'auction s':>9} {'engine s':>8} {'tokens':>6} {'prompt tok':>10} "
                f"{'non-gen ms':>10} {'ads in samples':>14}"
            )
            for i in range(runs):
                body = request_for(i, n_ads, samples, max_tokens)
                context = to_context(AuctionRequest.model_validate(body))
                ids = engine.tokenizer.encode(build_prompt(context, engine.tokenizer.render_chat).text)
                sampling = SamplingRequest(samples, max_tokens, 0.7, 0.8, body["options"]["seed"])

                async def auction() -> dict[str, Any]:
                    t0 = time.perf_counter()
                    response = await http.post("/v1/auctions", json=body)  # noqa: B023 (awaited in this turn)
                    e2e.append(time.perf_counter() - t0)
                    response.raise_for_status()
                    result: dict[str, Any] = response.json()
                    return result

                async def engine_call() -> int:
                    t0 = time.perf_counter()
                    generation = await engine.generate(ids, sampling, f"bench-{i}")  # noqa: B023
                    engine_only.append(time.perf_counter() - t0)
                    return sum(s.num_tokens for s in generation.samples)

                # Same prompt and seed, so the same tokens; alternate the order so neither side always gets
                # the other's prompt blocks from the prefix cache.
                if i % 2 == 0:
                    result, n_tokens = await auction(), await engine_call()
                else:
                    n_tokens, result = await engine_call(), await auction()
                tokens.append(n_tokens)
                timings = result["timings_ms"]
                in_app.append(timings["total"] - timings["generate"])
                exposed = sum(a["exposure_rate"] > 0 for a in result["ads"])
                print(
                    f"{i:>3} {e2e[-1]:>9.2f} {engine_only[-1]:>8.2f} {tokens[-1]:>6} {len(ids):>10} "
                    f"{in_app[-1]:>10.2f} {exposed:>14}"
                )

    med_e2e, med_engine = statistics.median(e2e), statistics.median(engine_only)
    print(f"median auction (HTTP app, K={samples}): {med_e2e:.2f} s")
    print(f"median engine call alone:              {med_engine:.2f} s")
    print(f"service overhead: {(med_e2e - med_engine) * 1000:.1f} ms = {(med_e2e / med_engine - 1) * 100:.1f} %")
    print(f"in-app time outside generation (median): {statistics.median(in_app):.2f} ms")
    print(
        f"generation throughput: {statistics.median(t / s for t, s in zip(tokens, engine_only, strict=True)):.0f} tok/s"
    )


if __name__ == "__main__":  # vLLM's CPU engine starts its workers with spawn: keep the guard
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--ads", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.samples, args.max_tokens, args.ads))
