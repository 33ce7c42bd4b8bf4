"""Locust load test: chat frontends calling the auction service, and their users clicking sponsored links.

Each simulated user has a profile from the catalogue and asks questions: most are fresh, a share repeats a
small set of hot contexts (served from the sample cache). Every auction carries the question's category ads
plus others from the catalogue (``LOAD_ADS`` in all, default 20), with bids drawn from each ad's typical range.
Users click shown ads as the simulated users of ``service.simulation.users`` do (relevance to the
question and profile, how natively the ad is placed, competition between similar ads, nothing when flooded).

Settings (environment): LOAD_SAMPLES (K, 4), LOAD_MAX_TOKENS (32), LOAD_ADS (20), LOAD_REPEAT_SHARE (0.3),
LOAD_API_KEY (when the service requires keys), LOAD_MAX_FAIL_RATIO (0.01), LOAD_MAX_P99_MS (60000).
Run with ``scripts/load_test.py`` (starts the service, runs this headless, writes CSV and HTML, stops it) or
against a running service: ``locust -f load_tests/locustfile.py --headless -u 8 -r 2 -t 2m --host URL``.
"""

from __future__ import annotations

import json
import os
import random
from importlib import resources
from typing import Any

from locust import HttpUser, between, events, task
from locust.env import Environment

from service.mechanism.types import AuctionContext
from service.simulation.users import simulate_clicks

CATALOG: dict[str, Any] = json.loads(resources.files("service.data").joinpath("catalog.json").read_text())
SAMPLES = int(os.environ.get("LOAD_SAMPLES", "4"))
MAX_TOKENS = int(os.environ.get("LOAD_MAX_TOKENS", "32"))
N_ADS = int(os.environ.get("LOAD_ADS", "20"))
REPEAT_SHARE = float(os.environ.get("LOAD_REPEAT_SHARE", "0.3"))
MAX_FAIL_RATIO = float(os.environ.get("LOAD_MAX_FAIL_RATIO", "0.01"))
MAX_P99_MS = float(os.environ.get("LOAD_MAX_P99_MS", "60000"))
API_KEY = os.environ.get("LOAD_API_KEY")
HOT_CONTEXTS = 5


def auction_body(rng: random.Random, profile: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
    fitting = [a for a in CATALOG["ads"] if a["category"] == query["category"]]
    others = [a for a in CATALOG["ads"] if a["category"] != query["category"]]
    ads = fitting + rng.sample(others, max(0, min(len(others), N_ADS - len(fitting))))
    rng.shuffle(ads)
    return {
        "query": query["query"],
        "user": {"id": profile["id"], "profile": {k: v for k, v in profile.items() if k != "id"}},
        "ads": [
            {"id": a["id"], "title": a["title"], "url": a["url"], "bid": float(rng.randint(*a["typical_bid"]))}
            for a in ads
        ],
        "options": {"samples": SAMPLES, "max_tokens": MAX_TOKENS},
    }


# A few contexts that many users send: they exercise the sample cache.
_hot_rng = random.Random(7)
HOT = [
    auction_body(_hot_rng, _hot_rng.choice(CATALOG["profiles"]), _hot_rng.choice(CATALOG["queries"]))
    for _ in range(HOT_CONTEXTS)
]


class ChatFrontend(HttpUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.profile = self.rng.choice(CATALOG["profiles"])
        if API_KEY:
            self.client.headers["Authorization"] = f"Bearer {API_KEY}"

    @task
    def ask(self) -> None:
        if self.rng.random() < REPEAT_SHARE:
            body, name = self.rng.choice(HOT), "[auction] repeated context"
        else:
            body = auction_body(self.rng, self.profile, self.rng.choice(CATALOG["queries"]))
            name = "[auction] fresh context"
        with self.client.post("/v1/auctions", json=body, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            result = response.json()
            if result.get("samples") != SAMPLES or len(result.get("ads", [])) != len(body["ads"]):
                response.failure("malformed auction result")
                return
            response.success()
        context = AuctionContext.from_dict(body)
        links = {a["id"]: a["click_url"] for a in result["ads"] if a["exposed"]}
        for ad_id in simulate_clicks(context, result["raw_text"], result["auction_id"]):
            with self.client.get(links[ad_id], name="[click]", allow_redirects=False, catch_response=True) as click:
                if click.status_code == 302:
                    click.success()
                else:
                    click.failure(f"click HTTP {click.status_code}")


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _gate(environment: Environment, **_: Any) -> None:
    """Non-zero exit when the run misses its thresholds (error ratio, p99 latency)."""
    total = environment.stats.total
    p99 = total.get_response_time_percentile(0.99) or 0.0
    if total.num_requests == 0:
        print("load test: no request completed")
        environment.process_exit_code = 1
    elif total.fail_ratio > MAX_FAIL_RATIO:
        print(f"load test: error ratio {total.fail_ratio:.3f} above {MAX_FAIL_RATIO}")
        environment.process_exit_code = 1
    elif p99 > MAX_P99_MS:
        print(f"load test: p99 {p99:.0f} ms above {MAX_P99_MS:.0f} ms")
        environment.process_exit_code = 1
