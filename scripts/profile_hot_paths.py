"""Flame graphs (py-spy, SVG) of the service's hot paths under load, for docs/benchmarks.md:

  - cache_hit: 16 clients sending the same auction (the sample cache answers; no generation): the web stack,
    validation, the mechanism, signing and the event log: what separates it from a trivial FastAPI endpoint;
  - fresh: 8 clients, fresh contexts, K=4 × 32 tokens: where the API process spends its time while the engine
    generates.

py-spy samples the service process; for the fresh load also its subprocesses (the engine core and its worker).
Needs ptrace rights (root here).

    .venv/bin/python scripts/profile_hot_paths.py [--seconds 15] [--out docs/benchmarks/profiles]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

import httpx

from service.devtools.bench import bench_service, body_for, closed_loop, rate_for
from service.settings import PROJECT_ROOT

PY_SPY = Path(sys.executable).parent / "py-spy"


def record(
    pid: int, out: Path, seconds: float, subprocesses: bool = False, fmt: str = "flamegraph"
) -> subprocess.Popen[bytes]:
    """``--gil`` for the API process: only the thread holding the GIL, i.e. what bounds the event loop's rate
    (without it, idle worker threads parked in C code show up as busy)."""
    args = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
            "--format", fmt, "--output", str(out), "--nonblocking"]  # fmt: skip
    args.append("--subprocesses" if subprocesses else "--gil")
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def cache_hit_load(url: str, seconds: float) -> float:
    body = body_for(1, n_ads=8, samples=8, max_tokens=32)
    body["options"].pop("seed")
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        (await http.post("/v1/auctions", json=body)).raise_for_status()
        await asyncio.sleep(0.5)
        assert (await http.post("/v1/auctions", json=body)).json()["cache_hit"], "no cache hit"
    rate, _ = await rate_for(url, body, seconds, 16)
    return float(rate)


async def fresh_load(url: str, n: int) -> float:
    bodies = [body_for(200 + i, samples=4, max_tokens=32, seed=70_000 + i) for i in range(n)]
    elapsed, _, errors = await closed_loop(url, bodies, 8)
    assert not errors, f"{errors} auctions failed"
    return n / elapsed


def main(seconds: float, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with bench_service(AUCTION_MAX_AUCTIONS_IN_FLIGHT="64") as (url, service):
        asyncio.run(cache_hit_load(url, 2))  # the one uncached auction and the cache write happen here
        spy = record(service.pid, out / "cache_hit.svg", seconds)
        raw = record(service.pid, out / "cache_hit.txt", seconds, fmt="raw")
        rate = asyncio.run(cache_hit_load(url, seconds))
        spy.wait(60)
        raw.wait(60)
        print(f"cache_hit: {rate:.0f} auctions/s while profiled -> {out / 'cache_hit.svg'}")
        spy = record(service.pid, out / "fresh.svg", seconds * 2, subprocesses=True)
        rate = asyncio.run(fresh_load(url, 24))
        spy.wait(120)
        print(f"fresh: {rate:.2f} auctions/s while profiled -> {out / 'fresh.svg'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks" / "profiles")
    args = parser.parse_args()
    main(args.seconds, args.out)
