"""Load test: 30 % of contexts come back with fresh bids (the same question, profile and ads; an advertiser changed
its bid, or a sweep), with bids in the prompt (the paper's design: every bid change is a new prompt, so a miss)
against the bid-blind proposal (``bids_in_prompt=false``: the prompt, and so the cached samples, hold no bids;
bids enter through the selection and the payments only).

Each mode runs ``--rounds`` times in the order A B B A ..., on one service, each round on its own contexts (a
round tag in the profile), 4 clients, K=4 × 32 tokens, unseeded requests (the sample cache keys on the prompt).
Printed: sample-cache hit rate and auctions/s per mode (medians), raw results in var/bench/repeats.json.

    .venv/bin/python scripts/bench_repeats.py [--auctions 40] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import statistics
import time
from typing import Any

import httpx

from service.data import catalog_context, request_body
from service.devtools.bench import bench_service, save_results
from service.mechanism.types import AuctionContext

REPEAT_SHARE = 0.3


def bodies(n: int, round_no: int, bids_in_prompt: bool) -> list[dict[str, Any]]:
    rng = random.Random(round_no)
    fresh: list[AuctionContext] = []
    out: list[dict[str, Any]] = []
    for i in range(n):
        if fresh and rng.random() < REPEAT_SHARE:
            base = rng.choice(fresh)  # a context seen before, its bids redrawn
            ads = tuple(dataclasses.replace(a, bid=round(a.bid * rng.uniform(0.5, 1.5), 2)) for a in base.ads)
            context = dataclasses.replace(base, ads=ads)
        else:
            context = catalog_context(i, 8)
            context = dataclasses.replace(context, profile={**context.profile, "round": f"r{round_no}"})
            fresh.append(context)
        out.append(request_body(context, samples=4, max_tokens=32, bids_in_prompt=bids_in_prompt))
    return out


async def run(url: str, requests: list[dict[str, Any]], concurrency: int = 4) -> dict[str, float]:
    hits = 0
    pending = list(reversed(requests))
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:

        async def worker() -> None:
            nonlocal hits
            while pending:
                response = await http.post("/v1/auctions", json=pending.pop())
                response.raise_for_status()
                hits += bool(response.json()["cache_hit"])

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"auctions": len(requests), "hit_rate": hits / len(requests), "per_s": len(requests) / elapsed}


def main(n: int, rounds: int) -> None:
    modes = {"bids_in_prompt": True, "bid_blind": False}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in modes}
    with bench_service() as (url, _service):
        names = list(modes)
        for i in range(2 * rounds):
            name = names[(i + i // 2) % 2]  # A B B A ...
            result = asyncio.run(run(url, bodies(n, i, modes[name])))
            results[name].append(result)
            print(f"round {i + 1}: {name:15} hit rate {result['hit_rate']:.2f}, {result['per_s']:.2f} auctions/s",
                  flush=True)  # fmt: skip
    med = {
        name: {k: statistics.median(r[k] for r in rows) for k in ("hit_rate", "per_s")}
        for name, rows in results.items()
    }
    for name, m in med.items():
        print(f"{name:15} cache hit rate {m['hit_rate']:.2f}  auctions/s {m['per_s']:.2f}")
    print(
        f"bid-blind ÷ bids in the prompt, auctions/s: {med['bid_blind']['per_s'] / med['bids_in_prompt']['per_s']:.2f}"
    )
    save_results("repeats", {"repeat_share": REPEAT_SHARE, "runs": results, "medians": med})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--auctions", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    main(args.auctions, args.rounds)
