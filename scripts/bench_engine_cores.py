"""Benchmark: the CPU engine's worker on one core (vLLM's default here: it reserves a core for its scheduler,
which leaves the API, Redis and the encoder the other) against the worker on both cores.

Each configuration is the real service (``python -m service serve``), started ``--starts`` times in the order
A B B A ... (so a slow phase of the machine hits both), and measured on every start:
  - decode: one client, one auction of K=8 × 128 tokens at a time (fresh seeds), generated tokens/s from the
    engine's own token counter over the auction's wall time;
  - saturation: 8 clients, fresh contexts, K=4 × 32 tokens: auctions/s.
Medians per configuration, the ratio two cores ÷ one core, raw results in var/bench/engine_cores.json.

    .venv/bin/python scripts/bench_engine_cores.py [--starts 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from service.devtools.bench import bench_service, body_for, closed_loop, generated_tokens, save_results

# vLLM CPU's own settings (vllm/utils/ompmultiprocessing.py): "auto" binds the worker's OpenMP threads to the
# cores left after reserving VLLM_CPU_NUM_OF_RESERVED_CPU (default: one per local rank) for the scheduler.
CONFIGS: dict[str, dict[str, str]] = {
    "one_core": {"VLLM_CPU_NUM_OF_RESERVED_CPU": "1"},
    "two_cores": {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"},
}


async def measure(url: str, seed: int) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        await http.post("/v1/auctions", json=body_for(0, samples=2, max_tokens=8, seed=seed))  # warm up
        rates = []
        for i in range(3):
            before = await generated_tokens(http)
            t0 = time.perf_counter()
            response = await http.post("/v1/auctions", json=body_for(i, samples=8, max_tokens=128, seed=seed + 1 + i))
            elapsed = time.perf_counter() - t0
            response.raise_for_status()
            rates.append((await generated_tokens(http) - before) / elapsed)
    bodies = [body_for(100 + i, samples=4, max_tokens=32, seed=seed + 100 + i) for i in range(24)]
    elapsed, _, errors = await closed_loop(url, bodies, 8)
    if errors:
        raise RuntimeError(f"{errors} auctions failed")
    return {"decode_tokens_per_s": statistics.median(rates), "saturation_auctions_per_s": len(bodies) / elapsed}


def run_config(name: str, seed: int) -> dict[str, float]:
    extra = {"AUCTION_SAMPLE_CACHE_TTL_S": "0", "AUCTION_MAX_AUCTIONS_IN_FLIGHT": "64", **CONFIGS[name]}
    with bench_service(**extra) as (url, _service):
        return asyncio.run(measure(url, seed))


def main(starts: int) -> None:
    order = ["one_core", "two_cores"]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in order}
    for i in range(starts):
        name = order[(i + i // 2) % 2]  # A B B A A B ...
        result = run_config(name, seed=1000 * (i + 1))
        results[name].append(result)
        print(f"start {i + 1}: {name:9} decode {result['decode_tokens_per_s']:6.0f} tokens/s, "
              f"saturation {result['saturation_auctions_per_s']:.2f} auctions/s", flush=True)  # fmt: skip
    med = {
        name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for name, rows in results.items()
        if rows
    }
    for key in ("decode_tokens_per_s", "saturation_auctions_per_s"):
        ratio = med["two_cores"][key] / med["one_core"][key]
        print(f"{key:26} one core {med['one_core'][key]:8.2f}  two cores {med['two_cores'][key]:8.2f}  "
              f"ratio {ratio:.2f}")  # fmt: skip
    save_results("engine_cores", {"configs": CONFIGS, "runs": results, "medians": med})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=4)
    main(parser.parse_args().starts)
