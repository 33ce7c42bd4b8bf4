"""Benchmark: event-log write throughput into a real redis-server, next to plain XADD baselines.

Starts its own redis-server (AOF everysec, as the service runs it), builds realistic impression events (the
service's own builder: 8 catalogue ads, K=8 samples of ~400 characters: ≈6 KB of JSON each), then measures in
one run on the same server:
  (a) plain XADD, one awaited command at a time (what a naive logger does),
  (b) plain XADD, pipelined in batches of 100 (the ceiling for these payloads),
  (c) EventLog: emit() from the request path + the writer's pipelined, deduplicating Lua script.
Usage: .venv/bin/python scripts/bench_events.py [--events 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from service.auctions.mapping import impression_event
from service.data import catalog
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


async def main(n: int) -> None:
    events = [make_event(i) for i in range(n)]
    payloads = [json.dumps(e) for e in events]
    print(f"{n} impression events, mean {sum(map(len, payloads)) / n / 1024:.1f} KiB of JSON each")
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(find_redis_server(), Path(tmp) / "redis")
        with server.running():
            redis = client(server.url, timeout_s=5.0)

            await redis.flushdb()
            t0 = time.perf_counter()
            for p in payloads:
                await redis.xadd("bench", {"data": p})
            sequential = n / (time.perf_counter() - t0)

            await redis.flushdb()
            t0 = time.perf_counter()
            for start in range(0, n, 100):
                pipe = redis.pipeline(transaction=False)
                for p in payloads[start : start + 100]:
                    pipe.xadd("bench", {"data": p})
                await pipe.execute()
            pipelined = n / (time.perf_counter() - t0)

            await redis.flushdb()
            log = EventLog(redis, Spool(Path(tmp) / "spool.jsonl"), queue_size=n + 1)
            await log.start()
            t0 = time.perf_counter()
            for e in events:
                log.emit(IMPRESSIONS, e, event_id=f"imp:{e['auction_id']}")
            emitted = time.perf_counter() - t0
            await log.flush()
            elapsed = time.perf_counter() - t0
            await log.close()
            assert await redis.xlen(IMPRESSIONS) == n, "events missing"
            assert log.stats["impressions.written"] == n, "events not counted as written"
            await redis.aclose()

    event_log = n / elapsed
    writer = n / (elapsed - emitted)  # emit() never yields, so the writer ran only after the last emit
    print(f"(a) XADD one at a time:           {sequential:>8.0f} events/s")
    print(f"(b) XADD pipelined ×100:          {pipelined:>8.0f} events/s")
    print(f"(c) EventLog end to end:          {event_log:>8.0f} events/s = {event_log / sequential:.1f}× (a)")
    print(f"    of which the Redis writer:    {writer:>8.0f} events/s = {writer / pipelined:.2f}× (b)")
    print(f"    emit() on the request path:   {emitted / n * 1e6:>8.1f} µs per event (JSON encoding + enqueue)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    asyncio.run(main(parser.parse_args().events))
