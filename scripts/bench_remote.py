"""Benchmark: remote engine mode (a vLLM OpenAI server on this machine) against the in-process engine, for the
same auctions (same contexts, seeds, K), interleaved in one run. Also checks that both gave the same samples.

    .venv/bin/python scripts/bench_remote.py [--runs 6] [--samples 8] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from service.app import create_app
from service.data import catalog, catalog_ad, request_body
from service.mechanism.types import AuctionContext
from service.settings import DEFAULT_MODEL_DIR, PROJECT_ROOT, Settings
from service.storage.redis import free_port


def request_for(i: int, samples: int, max_tokens: int) -> dict[str, Any]:
    data = catalog()
    query = data["queries"][i % len(data["queries"])]
    ads = [a for a in data["ads"] if a["category"] == query["category"]][:6] or data["ads"][:6]
    context = AuctionContext(
        query["query"],
        f"u{i}",
        {"interests": ["running", "coffee"]},
        tuple(catalog_ad(a, float(a["typical_bid"][1])) for a in ads),
    )
    return request_body(context, samples=samples, max_tokens=max_tokens, seed=900 + i, return_samples=True)


def start_vllm_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_HOST_IP": "127.0.0.1", "VLLM_NO_USAGE_STATS": "1",
           "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    args = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(DEFAULT_MODEL_DIR),
            "--served-model-name", "smollm2-135m-instruct", "--host", "127.0.0.1", "--port", str(port),
            "--dtype", "bfloat16", "--max-model-len", "4096", "--enforce-eager", "--no-enable-chunked-prefill",
            "--max-num-batched-tokens", "32768"]  # fmt: skip
    return subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


async def main(runs: int, samples: int, max_tokens: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_vllm_server(port, Path(tmp) / "vllm.log")
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient() as probe:
                while True:
                    try:
                        if (await probe.get(f"{url}/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(1)
            common: dict[str, Any] = {"secret_key": secrets.token_urlsafe(32), "environment": "test",
                                      "redis_data_dir": Path(tmp) / "redis", "sample_cache_ttl_s": 0}  # fmt: skip
            local_app = create_app(Settings(**common, spool_path=Path(tmp) / "a.jsonl"))
            remote_app = create_app(
                Settings(**common, engine="remote", remote_urls=[url], spool_path=Path(tmp) / "b.jsonl")
            )
            async with local_app.router.lifespan_context(local_app), remote_app.router.lifespan_context(remote_app):
                local = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=local_app), base_url="http://a", timeout=600
                )
                remote = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=remote_app), base_url="http://b", timeout=600
                )
                for client in (local, remote):  # warm-up
                    (await client.post("/v1/auctions", json=request_for(99, samples, max_tokens))).raise_for_status()
                times: dict[str, list[float]] = {"in-process": [], "remote": []}
                same = 0
                print(f"K={samples} max_tokens={max_tokens}")
                print(f"{'run':>3} {'in-process s':>12} {'remote s':>9} {'same samples':>12}")
                for i in range(runs):
                    body = request_for(i, samples, max_tokens)
                    results = {}
                    order = [("in-process", local), ("remote", remote)]
                    for name, client in order if i % 2 == 0 else order[::-1]:
                        t0 = time.perf_counter()
                        response = await client.post("/v1/auctions", json=body)
                        times[name].append(time.perf_counter() - t0)
                        response.raise_for_status()
                        results[name] = response.json()["sample_texts"]
                    identical = results["in-process"] == results["remote"]
                    same += identical
                    print(f"{i:>3} {times['in-process'][-1]:>12.2f} {times['remote'][-1]:>9.2f} {identical!s:>12}")
                await local.aclose()
                await remote.aclose()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    a, b = statistics.median(times["in-process"]), statistics.median(times["remote"])
    print(f"median in-process: {a:.2f} s   median remote: {b:.2f} s   remote overhead: {(b - a) * 1000:.0f} ms "
          f"({(b / a - 1) * 100:+.1f} %)   identical samples: {same}/{runs}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.samples, args.max_tokens))
