"""Time to first token of a streamed auction under each selection rule, side by side in one run: the service
(served model version, sample cache off) on loopback, K = 8 × 64 tokens, the same 8 catalogue contexts and seeds
for both rules, alternating.

    .venv/bin/python scripts/bench_stream.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import httpx

from service.data import catalog_context, request_body
from service.devtools.service_process import running_service


def main() -> None:
    results: dict[str, list[tuple[float, float]]] = {"uniform": [], "optimal": []}
    with tempfile.TemporaryDirectory() as tmp:
        env = {"AUCTION_ENVIRONMENT": "test", "AUCTION_SAMPLE_CACHE_TTL_S": "0"}
        with (
            running_service(env, Path(tmp), Path(tmp) / "serve.log", 300) as service,
            httpx.Client(base_url=service.base_url, timeout=120) as http,
        ):
            for i in range(8):
                for mode in ("uniform", "optimal"):
                    options = {"samples": 8, "max_tokens": 64, "seed": 100 + i, "selection": mode}
                    body = {**request_body(catalog_context(i, 8), **options), "stream": True}
                    started = time.perf_counter()
                    first: float | None = None
                    with http.stream("POST", "/v1/auctions", json=body) as response:
                        for line in response.iter_lines():
                            words = line.startswith("data: {") and '"content": "' in line
                            if words and '"content": ""' not in line and first is None:
                                first = time.perf_counter() - started
                    total = time.perf_counter() - started
                    results[mode].append((first if first is not None else total, total))
    for mode, runs in results.items():
        ttft = statistics.median(f for f, _ in runs)
        whole = statistics.median(t for _, t in runs)
        print(f"{mode:<8} time to first words: median {ttft:.2f} s; whole answer: median {whole:.2f} s")


if __name__ == "__main__":
    main()
