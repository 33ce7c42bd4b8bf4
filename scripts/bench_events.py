"""Benchmark: event-log write throughput into a real redis-server, next to plain XADD baselines.

Starts its own redis-server (AOF everysec, as the service runs it), builds realistic impression events (the
service's own builder: 8 catalogue ads, K=8 samples of ~400 characters: ≈10 KB of JSON each), then measures on
the same server, in ``--runs`` rounds whose order alternates (a b c, then c b a, ...), medians reported:
  (a) plain XADD, one awaited command at a time (what a naive logger does),
  (b) plain XADD, pipelined in batches of 100 (the ceiling for these payloads), each event encoded with orjson
      inside the timed loop: a logger must encode what it writes, so both sides pay for it;
  (c) EventLog: emit() from the request path + the writer's batched, deduplicating Lua script, end to end.
The issue's target: (c) / (b) >= 0.85. Raw results: var/bench/events.json.
Usage: .venv/bin/python scripts/bench_events.py [--events 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from service.auctions.mapping import impression_event
from service.data import catalog
from service.devtools.bench import save_results
from service.engine.base import Generation, Sample, SamplingRequest
from service.events.log import IMPRESSIONS, EventLog
from service.events.spool import Spool
from service.mechanism import auction
from service.mechanism.ctr import DEFAULT_CTR_MODEL
from service.mechanism.objective import ObjectiveWeights
from service.mechanism.prompt import build_prompt
from service.mechanism.types import Ad, AuctionContext
from service.storage.redis import RedisServer, client, find_redis_server


def make_event(i: int) -> dict[str, Any]:
    data = catalog()
    ads = tuple(Ad(a["id"], a["title"], a["url"], float(a["typical_bid"][1])) for a in data["ads"][:8])
    query = data["queries"][i % len(data["queries"])]["query"]
    context = AuctionContext(query, f"u{i}", {"interests": ["running", "coffee"]}, ads)
    texts = [f"Sample {k}: " + "A helpful answer about the question. " * 11 + ads[k % 8].marker for k in range(8)]
    generation = Generation(tuple(Sample(k, t, "stop", 100) for k, t in enumerate(texts)), 600)
    outcome = auction.run(context, texts, f"a{i}", DEFAULT_CTR_MODEL, ObjectiveWeights())
    return impression_event(
        auction_id=f"a{i}",
        timestamp=time.time(),
        request_id=None,
        model="bench",
        ctr_model_version=DEFAULT_CTR_MODEL.version,
        context=context,
        prompt=build_prompt(context, lambda ms: "".join(m["content"] for m in ms)),
        sampling=SamplingRequest(8, 128, 0.7, 0.8, i),
        generation=generation,
        outcome=outcome,
        cache_hit=False,
    )


async def sequential_xadd(redis: Any, events: list[dict[str, Any]]) -> float:
    t0 = time.perf_counter()
    for e in events:
        await redis.xadd("bench", {"data": orjson.dumps(e)})
    return len(events) / (time.perf_counter() - t0)


async def pipelined_xadd(redis: Any, events: list[dict[str, Any]]) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(events), 100):
        pipe = redis.pipeline(transaction=False)
        for e in events[start : start + 100]:
            pipe.xadd("bench", {"data": orjson.dumps(e)})
        await pipe.execute()
    return len(events) / (time.perf_counter() - t0)


async def event_log(redis: Any, events: list[dict[str, Any]], spool: Path, run: int) -> tuple[float, float]:
    log = EventLog(redis, Spool(spool), queue_size=len(events) + 1)
    await log.start()
    t0 = time.perf_counter()
    for e in events:
        log.emit(IMPRESSIONS, e, event_id=f"imp:{run}:{e['auction_id']}")
    emitted = time.perf_counter() - t0
    await log.flush()
    elapsed = time.perf_counter() - t0
    await log.close()
    assert await redis.xlen(IMPRESSIONS) == len(events), "events missing"
    assert log.stats["impressions.written"] == len(events), "events not counted as written"
    return len(events) / elapsed, emitted / len(events) * 1e6


async def main(n: int, runs: int) -> None:
    events = [make_event(i) for i in range(n)]
    size = sum(len(orjson.dumps(e)) for e in events) / n
    print(f"{n} impression events, mean {size / 1024:.1f} KiB of JSON each; {runs} rounds, alternating order")
    results: dict[str, list[float]] = {"sequential": [], "pipelined": [], "event_log": [], "emit_us": []}
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(find_redis_server(), Path(tmp) / "redis")
        with server.running():
            redis = client(server.url, timeout_s=5.0)
            for run in range(runs):
                order = ["sequential", "pipelined", "event_log"]
                for name in order if run % 2 == 0 else order[::-1]:
                    await redis.flushdb()
                    if name == "sequential":
                        results[name].append(await sequential_xadd(redis, events))
                    elif name == "pipelined":
                        results[name].append(await pipelined_xadd(redis, events))
                    else:
                        rate, emit_us = await event_log(redis, events, Path(tmp) / f"spool{run}.jsonl", run)
                        results["event_log"].append(rate)
                        results["emit_us"].append(emit_us)
            await redis.aclose()

    med = {name: statistics.median(values) for name, values in results.items()}
    ratio = med["event_log"] / med["pipelined"]
    ratios = [e / p for e, p in zip(results["event_log"], results["pipelined"], strict=True)]
    print(f"(a) XADD one at a time:           {med['sequential']:>8.0f} events/s")
    print(f"(b) XADD pipelined ×100:          {med['pipelined']:>8.0f} events/s")
    print(f"(c) EventLog end to end:          {med['event_log']:>8.0f} events/s = {ratio:.2f}× (b)  [target ≥ 0.85;"
          f" per round {min(ratios):.2f}–{max(ratios):.2f}]")  # fmt: skip
    print(f"    emit() on the request path:   {med['emit_us']:>8.1f} µs per event (JSON encoding + enqueue)")
    raw = {"events": n, "mean_bytes": size, "runs": results, "medians": med, "ratio_event_log_to_pipelined": ratio}
    save_results("events", raw)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.runs))
