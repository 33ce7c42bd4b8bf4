"""Locust load test: chat frontends calling the auction service, and their users clicking sponsored links.

Each simulated user has a profile from the catalogue and asks questions: most are fresh, a share repeats a
small set of hot contexts (served from the sample cache). Every auction carries the question's category ads
plus others from the catalogue (``LOAD_ADS`` in all, default 20), with bids drawn from each ad's typical range.
A shown ad is clicked with probability 0.30 when it belongs to the question's category and 0.05 otherwise,
halved for every other ad shown in the same answer (a documented toy click model, not the CTR model).

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


def click_probability(ad_category: str, query_category: str, ads_shown: int) -> float:
    base = 0.30 if ad_category == query_category else 0.05
    return base / 2.0 ** max(0, ads_shown - 1)


# A few contexts that many users send: they exercise the sample cache.
_hot_rng = random.Random(7)
HOT = [
    auction_body(_hot_rng, _hot_rng.choice(CATALOG["profiles"]), _hot_rng.choice(CATALOG["queries"]))
    for _ in range(HOT_CONTEXTS)
]
CATEGORY = {a["id"]: a["category"] for a in CATALOG["ads"]}
QUERY_CATEGORY = {q["query"]: q["category"] for q in CATALOG["queries"]}


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
        shown = [a for a in result["ads"] if a["exposed"]]
        for ad in shown:
            p = click_probability(CATEGORY.get(ad["id"], ""), QUERY_CATEGORY.get(body["query"], ""), len(shown))
            if self.rng.random() < p:
                with self.client.get(ad["click_url"], name="[click]", allow_redirects=False,
                                     catch_response=True) as click:  # fmt: skip
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
