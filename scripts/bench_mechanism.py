"""Benchmark of the per-auction CPU work outside generation, each part timed alone, medians of repeated runs:

1. the pure mechanism (parse, objectives, selection, ITCTR, payments) for K = 16 samples and 100 candidate ads,
   first price and Myerson, uniform and optimal;
2. CTR relevance scoring with the sentence encoder, K = 16 samples and 100 ads: ads new to the encoder's cache
   (first sight of an ad) and ads seen before (ad content is fixed);
3. the eligibility stage (topic gate + one pipelined Redis read + the rules) for 20 candidates, against a real
   redis-server this script starts.

    .venv/bin/python scripts/bench_mechanism.py [--runs 30]   # results also in var/bench/mechanism.json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from service.controls.service import Controls, Limits
from service.controls.store import ControlStore
from service.controls.topics import BUILT_IN, TopicGate
from service.data import catalog_context
from service.mechanism import auction
from service.mechanism.ctr import DEFAULT_CTR_MODEL
from service.mechanism.objective import ObjectiveWeights
from service.mechanism.payments import PaymentRule
from service.mechanism.selection import Selection, SelectionRule
from service.models.encoder import Encoder, prepare_encoder
from service.models.relevance import score
from service.settings import DEFAULT_ENCODER_DIR, PROJECT_ROOT
from service.storage.redis import RedisServer, client, find_redis_server


def median_ms(fn: Any, runs: int) -> float:
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def samples_for(context: Any, k: int) -> list[str]:
    ads = context.ads
    return [
        f"Answer {k_} with advice on the question. {ads[k_ % len(ads)].marker} is a good fit, and "
        f"{ads[(k_ * 7) % len(ads)].marker} too. More advice follows here." for k_ in range(k)
    ]  # fmt: skip


def main(runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    context = catalog_context(0, 100)
    texts = samples_for(context, 16)
    exposures = auction.parse_samples(context, texts)
    encoder = Encoder(prepare_encoder(DEFAULT_ENCODER_DIR))
    relevance = score(encoder, context, exposures)
    for selection in (Selection.UNIFORM, Selection.OPTIMAL):
        for payment in (PaymentRule.FIRST_PRICE, PaymentRule.MYERSON):
            rule = auction.MechanismRule(SelectionRule(selection, 0.5), payment)

            def run(i: int, rule: auction.MechanismRule = rule) -> None:
                auction.run(context, texts, f"a{i}", DEFAULT_CTR_MODEL, ObjectiveWeights(), rule, relevance=relevance)

            results[f"mechanism_k16_ads100_{selection.value}_{payment.value}_ms"] = median_ms(run, runs)

    def fresh(i: int) -> None:  # every ad new to the cache
        ctx = dataclasses.replace(
            context, ads=tuple(dataclasses.replace(a, title=f"{a.title} r{i}") for a in context.ads)
        )
        ex = auction.parse_samples(ctx, samples_for(ctx, 16))
        score(encoder, dataclasses.replace(ctx, query=f"{ctx.query} {i}"), ex)

    def known(i: int) -> None:  # known ads, a new question and new answers
        ctx = dataclasses.replace(context, query=f"{context.query} (asked {i})")
        ex = auction.parse_samples(ctx, [t.replace("advice", f"advice {i}") for t in texts])
        score(encoder, ctx, ex)

    results["ctr_k16_ads100_new_ads_ms"] = median_ms(fresh, max(5, runs // 3))
    results["ctr_k16_ads100_known_ads_ms"] = median_ms(known, runs)
    small = catalog_context(5, 20)
    small_texts = samples_for(small, 8)
    score(encoder, small, auction.parse_samples(small, small_texts))  # its ads are known from now on

    def known_small(i: int) -> None:  # issue 15's figure: K = 8, 20 known ads, a new question and answers
        ctx = dataclasses.replace(small, query=f"{small.query} (asked {i})")
        score(encoder, ctx, auction.parse_samples(ctx, [t.replace("advice", f"advice {i}") for t in small_texts]))

    results["ctr_k8_ads20_known_ads_ms"] = median_ms(known_small, runs)

    async def eligibility() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            server = RedisServer(find_redis_server(), Path(tmp))
            with server.running():
                redis = client(server.url, timeout_s=1.0)
                controls = Controls(
                    ControlStore(redis, 3600), TopicGate(encoder, list(BUILT_IN.values())), Limits(0, 2)
                )
                ctx = catalog_context(3, 20)
                times = []
                for i in range(runs):
                    asked = dataclasses.replace(ctx, query=f"{ctx.query} (asked {i})")
                    t0 = time.perf_counter()
                    await controls.decide(asked, None, [], {})
                    times.append((time.perf_counter() - t0) * 1000)
                await redis.aclose()
                return statistics.median(times)

    results["eligibility_ads20_ms"] = asyncio.run(eligibility())
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    out = main(parser.parse_args().runs)
    for name, value in out.items():
        print(f"{name:<50} {value:8.2f}")
    path = PROJECT_ROOT / "var" / "bench" / "mechanism.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
