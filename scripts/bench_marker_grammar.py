"""What decoding under the marker grammar costs: the same uncached auctions (20 catalogue ads, K = 8, 64 tokens,
one client, the sample cache off) with ``constrain_markers`` true and false, interleaved A B B A so that drift of
the machine falls on both. The grammar is compiled per candidate set (xgrammar, in the engine) and masks the
vocabulary at every step; a sample that writes no ``@`` is the same text either way, so the paired latency ratio
is the grammar's own cost plus the difference in what was written after an ``@``.

Printed: median latency per mode, the median of the paired ratios with a 95 % bootstrap interval (pairs
resampled), and the format errors per mode; raw results in var/bench/marker_grammar.json.

    .venv/bin/python scripts/bench_marker_grammar.py [--pairs 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

import httpx

from service.devtools.bench import bench_service, body_for, save_results


def bootstrap_median(values: list[float], rounds: int = 2000) -> tuple[float, float]:
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(rounds))
    return medians[int(0.025 * rounds)], medians[int(0.975 * rounds)]


def main(pairs: int) -> None:
    runs: list[dict[str, Any]] = []
    with bench_service(AUCTION_SAMPLE_CACHE_TTL_S="0") as (url, _), httpx.Client(base_url=url, timeout=600) as http:
        http.post("/v1/auctions", json=body_for(0, n_ads=20, samples=8, max_tokens=64)).raise_for_status()
        for i in range(pairs):
            order = (True, False) if i % 2 == 0 else (False, True)  # A B, B A, ...
            row: dict[str, Any] = {"pair": i}
            for constrained in order:
                body = body_for(i + 1, n_ads=20, samples=8, max_tokens=64, seed=20_000 + i)
                body["options"]["constrain_markers"] = constrained
                body["options"]["return_samples"] = True
                t0 = time.perf_counter()
                response = http.post("/v1/auctions", json=body)
                response.raise_for_status()
                name = "grammar" if constrained else "raw"
                row[f"{name}_s"] = time.perf_counter() - t0
                row[f"{name}_served_format_errors"] = response.json()["format_errors"]
            runs.append(row)
            print(f"pair {i + 1}: grammar {row['grammar_s']:.2f} s, raw {row['raw_s']:.2f} s", flush=True)
    ratios = [r["grammar_s"] / r["raw_s"] for r in runs]
    low, high = bootstrap_median(ratios)
    summary = {
        "pairs": pairs,
        "median_s": {m: statistics.median(r[f"{m}_s"] for r in runs) for m in ("grammar", "raw")},
        "median_ratio": statistics.median(ratios),
        "median_ratio_ci95": [low, high],
        "served_format_errors": {m: sum(r[f"{m}_served_format_errors"] for r in runs) for m in ("grammar", "raw")},
    }
    print(
        f"median latency: grammar {summary['median_s']['grammar']:.2f} s, raw {summary['median_s']['raw']:.2f} s; "
        f"paired ratio grammar ÷ raw {summary['median_ratio']:.3f} [{low:.3f}, {high:.3f}]"
    )
    save_results("marker_grammar", {"summary": summary, "runs": runs})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args()
    main(args.pairs)
