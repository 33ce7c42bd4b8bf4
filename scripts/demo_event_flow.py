"""Demo: auctions, clicks, a Redis outage and a training export, end to end, with the counts at each step.

Starts its own redis-server and the service (real engine, default model), runs catalogue auctions, follows the
click links of exposed ads (one of them twice), stops Redis, keeps serving and clicking, restarts Redis, waits
for the spool to drain, exports the training data, and prints what was sent against what Redis holds.
Usage: .venv/bin/python scripts/demo_event_flow.py [--auctions 8]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

from service.data import catalog, catalog_ad, profile_of, request_body
from service.events.log import CLICKS, IMPRESSIONS
from service.mechanism.types import AuctionContext
from service.settings import PROJECT_ROOT
from service.storage.redis import RedisServer, find_redis_server, free_port


def request_for(i: int, copy_marker: bool) -> dict[str, Any]:
    data = catalog()
    query = data["queries"][i % len(data["queries"])]
    profile = data["profiles"][i % len(data["profiles"])]
    ads = [a for a in data["ads"] if a["category"] == query["category"]][:4] or data["ads"][:4]
    text = query["query"]
    if copy_marker:  # the untrained model rarely places ads: ask it to copy one (DESIGN.md §7)
        marker = f"@{ads[0]['title']}@[{ads[0]['id']}]"
        text = f"Write one sentence recommending {marker} and keep the text {marker} unchanged."
    user_id, user_profile = profile_of(profile)
    context = AuctionContext(text, user_id, user_profile, tuple(catalog_ad(a, float(a["typical_bid"][1])) for a in ads))
    return request_body(context, samples=8, max_tokens=48)


def metric(http: httpx.Client, name: str, **labels: str) -> float:
    total = 0.0
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_phase(http: httpx.Client, first: int, count: int, clicks: list[str]) -> list[str]:
    ids = []
    for i in range(first, first + count):
        body = http.post("/v1/auctions", json=request_for(i, copy_marker=i % 2 == 0)).json()
        ids.append(body["auction_id"])
        for ad in body["ads"]:
            if ad["click_url"]:
                assert http.get(ad["click_url"]).status_code == 302
                clicks.append(ad["click_url"])
        print(f"  auction {body['auction_id'][:8]}: exposed {[a['id'] for a in body['ads'] if a['exposed']]}")
    return ids


def main(auctions: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisServer(find_redis_server(), Path(tmp) / "redis")
        redis_server.start()
        port = free_port()
        env = {
            **os.environ,
            "PORT": str(port),
            "REDIS_URL": redis_server.url,
            "AUCTION_SECRET_KEY": secrets.token_urlsafe(32),
            "AUCTION_SPOOL_PATH": str(Path(tmp) / "spool" / "events.jsonl"),
            "AUCTION_SAMPLE_CACHE_TTL_S": "0",
        }
        log = (Path(tmp) / "serve.log").open("wb")
        service = subprocess.Popen([sys.executable, "-m", "service", "serve"], cwd=PROJECT_ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300, follow_redirects=False)
        try:
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(1)
            clicks: list[str] = []
            half = auctions // 2
            print(f"phase 1: {half} auctions with Redis up")
            ids = run_phase(http, 0, half, clicks)
            if clicks:
                assert http.get(clicks[0]).status_code == 302  # a repeat click
                clicks.append(clicks[0])
            print(f"phase 2: Redis stopped; {auctions - half} more auctions and their clicks")
            redis_server.stop()
            ids += run_phase(http, half, auctions - half, clicks)
            if clicks:
                assert http.get(clicks[-1]).status_code == 302
                clicks.append(clicks[-1])
            print(f"  spooled so far: {metric(http, 'adauction_events_total', result='spooled'):.0f} events")
            print("phase 3: Redis restarted; waiting for the spool to drain")
            redis_server.start()
            while metric(http, "adauction_event_spool_depth") > 0 or metric(http, "adauction_event_queue_depth") > 0:
                time.sleep(0.5)
            time.sleep(1.0)
            redis = Redis.from_url(redis_server.url)
            reply: Any = redis.xrange(IMPRESSIONS)
            impressions = [json.loads(f[b"data"])["auction_id"] for _, f in reply]
            reply = redis.xrange(CLICKS)
            click_entries = [f for _, f in reply]
            counted = sum(f[b"dup"] == b"0" for f in click_entries)
            print("results")
            print(f"  auctions served: {len(ids)}; impressions in Redis: {len(impressions)} "
                  f"({len(set(impressions))} distinct, missing {len(set(ids) - set(impressions))})")  # fmt: skip
            print(f"  clicks followed: {len(clicks)}; click events in Redis: {len(click_entries)}; counted once: "
                  f"{counted}; flagged repeats: {len(click_entries) - counted}")  # fmt: skip
            for result in ("queued", "written", "spooled", "replayed", "already_stored", "duplicate", "dropped"):
                print(f"  events {result}: {metric(http, 'adauction_events_total', result=result):.0f}")
            export = subprocess.run(
                [sys.executable, "-m", "service.training", "export", "--out-dir", str(Path(tmp) / "export"),
                 "--final"],
                cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            print("export:", export.stdout)
        finally:
            service.terminate()
            service.wait(60)
            redis_server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--auctions", type=int, default=8)
    main(parser.parse_args().auctions)
