"""Training data out of the logs, on real Redis: the consumer-group export (CTR rows joined with clicks, DPO
pairs), ``fit-ctr``, and the service loading the fitted model. Events are made by the service's own builders
from real mechanism outcomes; only the K sample texts are written by hand (no engine here)."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from service.app import ctr_model as service_ctr_model
from service.auctions.mapping import impression_event
from service.clicks.events import click_event, click_once_key
from service.clicks.tokens import ClickTarget
from service.engine.base import Generation, Sample, SamplingRequest
from service.events.log import CLICKS, IMPRESSIONS, EventLog
from service.events.spool import Spool
from service.mechanism import auction
from service.mechanism.ctr import DEFAULT_CTR_MODEL, FEATURE_NAMES
from service.mechanism.objective import ObjectiveWeights
from service.mechanism.prompt import build_messages, build_prompt
from service.mechanism.types import Ad, AuctionContext
from service.models.ctr_artifact import load_ctr_model
from service.settings import PROJECT_ROOT, Settings
from service.storage.redis import RedisServer
from service.training.dataset import dpo_pairs, sample_objectives, swap_pairs
from service.training.export import export
from service.training.fit import _logistic as fit_logistic
from service.training.fit import calibration_in_the_large, fit_ctr, platt

T = 1_800_000_000.0
ADS = (
    Ad("Ad-1", "ArchGuard Stability Runner", "https://example.com/running/archguard", 80.0),
    Ad("Ad-2", "CloudStep Orthotic Insoles", "https://example.com/running/cloudstep", 20.0),
    Ad("Ad-3", "BrewMaster Burr Grinder", "https://example.com/coffee/brewmaster", 50.0),
)
CONTEXT = AuctionContext("Which running shoe for flat feet?", "u1", {"interests": ["running"]}, ADS)
BOTH = "@ArchGuard Stability Runner@[Ad-1] or @CloudStep Orthotic Insoles@[Ad-2] help."


def impression(auction_id: str, ts: float, samples: list[str], served_must_contain: str | None) -> dict[str, Any]:
    """A real impression event; the auction id is searched so the uniform draw serves the wanted sample."""
    generation = Generation(
        samples=tuple(Sample(i, text, "stop", 10) for i, text in enumerate(samples)),
        prompt_tokens=300,
    )
    for attempt in range(1000):
        candidate = f"{auction_id}-{attempt}"
        outcome = auction.run(CONTEXT, samples, candidate, DEFAULT_CTR_MODEL, ObjectiveWeights())
        if served_must_contain is None or served_must_contain in outcome.served.text:
            break
    return impression_event(
        auction_id=candidate,
        timestamp=ts,
        request_id=None,
        model="test-model",
        ctr_model_version=DEFAULT_CTR_MODEL.version,
        context=CONTEXT,
        prompt=build_prompt(CONTEXT, lambda ms: "|".join(m["content"] for m in ms)),
        sampling=SamplingRequest(len(samples), 32, 0.7, 0.8, 1),
        generation=generation,
        outcome=outcome,
        cache_hit=False,
    )


def click(events: EventLog, auction_id: str, ad_id: str, ts: float) -> None:
    target = ClickTarget(auction_id, ad_id, "https://example.com", 1.0)
    event = click_event(target=target, timestamp=ts, request_id=None, user_agent="test")
    events.emit(CLICKS, event, event_id=f"c-{auction_id}-{ad_id}-{ts}", once=click_once_key(target))


async def test_export_joins_clicks_within_the_window_and_leaves_young_impressions_pending(
    redis: aioredis.Redis, tmp_path: Path
) -> None:
    events = EventLog(redis, Spool(tmp_path / "spool.jsonl"))
    await events.start()
    a = impression("A", T - 7200, [BOTH], BOTH)
    b = impression("B", T - 7200, ["No ads here."], None)
    c = impression("C", T - 100, [BOTH], BOTH)
    for imp in (a, b, c):
        events.emit(IMPRESSIONS, imp, event_id=f"imp:{imp['auction_id']}")
    click(events, a["auction_id"], "Ad-1", T - 7100)  # joined
    click(events, a["auction_id"], "Ad-1", T - 7000)  # a repeat: flagged, not a second label
    click(events, a["auction_id"], "Ad-2", T - 7200 + 4000)  # after the 1 h window: late
    click(events, c["auction_id"], "Ad-2", T - 50)  # young impression: stays pending with it
    click(events, "Z-unknown", "Ad-1", T - 5000)  # no impression: an orphan once old
    await events.close()

    common: dict[str, Any] = {
        "group": "g",
        "consumer": "c1",
        "window_s": 3600,
        "delta": 10.0,
        "ctr_model": DEFAULT_CTR_MODEL,
        "weights": ObjectiveWeights(),
    }
    first = await export(redis, tmp_path / "out", now=T, **common)
    assert (first.impressions_exported, first.impressions_pending) == (2, 1)
    assert (first.clicks_joined, first.clicks_duplicate, first.clicks_late, first.clicks_orphan) == (1, 1, 1, 1)
    assert first.clicks_pending == 1
    rows = [json.loads(line) for line in Path(first.files[0]).read_text().splitlines()]
    assert {(r["auction_id"], r["ad_id"], r["clicked"]) for r in rows} == {
        (a["auction_id"], "Ad-1", 1),
        (a["auction_id"], "Ad-2", 0),
    }
    assert set(rows[0]["features"]) == set(FEATURE_NAMES)
    assert rows[0]["features"]["extra_ads"] == 1.0

    # An hour later C is final and its click joins; A and B are not exported again.
    second = await export(redis, tmp_path / "out2", now=T + 4000, **common)
    assert (second.impressions_exported, second.impressions_pending, second.clicks_joined) == (1, 0, 1)
    rows = [json.loads(line) for line in Path(second.files[0]).read_text().splitlines()]
    assert {(r["auction_id"], r["ad_id"], r["clicked"]) for r in rows} == {
        (c["auction_id"], "Ad-1", 0),
        (c["auction_id"], "Ad-2", 1),
    }
    third = await export(redis, tmp_path / "out3", now=T + 8000, **common)
    assert third.impressions_exported == 0
    assert third.files == []


async def test_dpo_pairs_best_against_every_sample_more_than_delta_below(redis: aioredis.Redis, tmp_path: Path) -> None:
    samples = [
        "Get @ArchGuard Stability Runner@[Ad-1] for flat feet.",  # high bid, relevant
        "Look for arch support.",  # no ad
        "Try @Nike Air@[Ad-999] and [Ad-3].",  # two format errors
        "@BrewMaster Burr Grinder@[Ad-3] makes coffee.",  # irrelevant ad
    ]
    imp = impression("D", T - 7200, samples, None)
    events = EventLog(redis, Spool(tmp_path / "spool.jsonl"))
    await events.start()
    events.emit(IMPRESSIONS, imp, event_id="imp:D")
    await events.close()

    report = await export(
        redis,
        tmp_path / "out",
        group="g",
        consumer="c1",
        window_s=3600,
        delta=10.0,
        ctr_model=DEFAULT_CTR_MODEL,
        weights=ObjectiveWeights(),
        now=T,
    )
    pairs = [json.loads(line) for line in Path(report.files[1]).read_text().splitlines()]
    scores = sample_objectives(imp, DEFAULT_CTR_MODEL, ObjectiveWeights())
    best = max(range(4), key=lambda i: scores[i])
    expected = {samples[i] for i in range(4) if scores[best] - scores[i] > 10}
    assert best == 0
    assert samples[2] in expected
    assert {p["rejected"][0]["content"] for p in pairs} == expected
    assert all(p["chosen"] == [{"role": "assistant", "content": samples[0]}] for p in pairs)
    assert all(p["prompt"] == [dict(m) for m in build_messages(CONTEXT)] for p in pairs)
    assert report.dpo_contexts == 1


def test_dpo_pairs_on_the_value_scale_and_capped_per_context() -> None:
    """Issue 16: penalties and δ scaled by the context's top bid; at most ``per_context`` pairs, drawn seeded."""
    samples = [
        "Get @ArchGuard Stability Runner@[Ad-1] for flat feet.",  # high bid, relevant
        "Look for arch support.",  # no ad
        "Try @Nike Air@[Ad-999] and [Ad-3].",  # two format errors
        "Try [Ad-1] now.",  # a format error
        "@BrewMaster Burr Grinder@[Ad-3] makes coffee.",  # irrelevant ad
    ]
    imp = impression("E", T, samples, None)
    weights = ObjectiveWeights(1.0, 1.0, 100.0)
    scale = max(ad.bid for ad in CONTEXT.ads) / 100.0
    scores = sample_objectives(imp, DEFAULT_CTR_MODEL, weights, scaled=True)
    best = max(range(len(samples)), key=lambda i: scores[i])
    assert best == 0
    assert scores[2] < scores[3] < min(scores[1], scores[4])  # every broken marker loses, even to no ad
    pairs = dpo_pairs(imp, DEFAULT_CTR_MODEL, weights, 2.0, scaled=True)
    expected = {samples[i] for i in range(len(samples)) if scores[best] - scores[i] > 2.0 * scale}
    assert {p["rejected"][0]["content"] for p in pairs} == expected
    assert len(expected) >= 2
    capped = dpo_pairs(imp, DEFAULT_CTR_MODEL, weights, 2.0, scaled=True, per_context=1)
    assert len(capped) == 1
    assert {p["rejected"][0]["content"] for p in capped} <= expected
    assert capped == dpo_pairs(imp, DEFAULT_CTR_MODEL, weights, 2.0, scaled=True, per_context=1)  # seeded


def test_dpo_pairs_keep_the_prompt_format_the_samples_were_generated_from() -> None:
    samples = ["Get @ArchGuard Stability Runner@[Ad-1] for flat feet.", "Try [Ad-1] now."]
    weights = ObjectiveWeights(1.0, 1.0, 100.0)
    p2 = {**impression("F", T, samples, None), "prompt_version": "p2"}
    pairs = dpo_pairs(p2, DEFAULT_CTR_MODEL, weights, 2.0, scaled=True)
    assert len(pairs) == 1
    assert pairs[0]["prompt"] == [dict(m) for m in build_messages(CONTEXT, fmt="p2")]
    assert pairs[0]["prompt"] != [dict(m) for m in build_messages(CONTEXT)]
    ranked = {**p2, "prompt_version": "p3", "prompt_fit": {"Ad-1": 0.4, "Ad-2": 0.3, "Ad-3": 0.0}}
    (pair,) = dpo_pairs(ranked, DEFAULT_CTR_MODEL, weights, 2.0, scaled=True)
    assert pair["prompt"] == [dict(m) for m in build_messages(CONTEXT, fmt="p3", fit=ranked["prompt_fit"])]
    assert pair["prompt"] != [dict(m) for m in build_messages(CONTEXT, fmt="p3")]  # ranked as it was served
    for version in ("p2-blind", "p1-blind", "p9"):  # the policy learns with bids, in a prompt it knows
        assert dpo_pairs({**p2, "prompt_version": version}, DEFAULT_CTR_MODEL, weights, 2.0, scaled=True) == []


def test_swap_pairs_name_the_objectives_best_ad_in_the_models_own_answer() -> None:
    """Issue 16, lever 2: the pair is one logged answer with two different ads in its slot; the chosen names the
    candidate the objective ranks first (bid × CTR: the high-bid fitting shoe, not the cheap insoles or the
    grinder), the rejected one more than δ below; only one-ad, well-formed samples are swapped."""
    one_ad = "For flat feet, @CloudStep Orthotic Insoles@[Ad-2] help a lot."
    samples = [one_ad, "Look for arch support.", "Try [Ad-1] now.", BOTH]
    relevance = {"query": {"Ad-1": 0.45, "Ad-2": 0.40, "Ad-3": 0.0}, "around": [[0, "Ad-2", 0.3]]}
    imp = {**impression("S", T, samples, None), "prompt_version": "p2", "relevance": relevance}
    weights = ObjectiveWeights(1.0, 1.0, 100.0)
    pairs = swap_pairs(imp, DEFAULT_CTR_MODEL, weights, 2.0, scaled=True, per_context=4)
    assert len(pairs) == 1  # only the first sample names exactly one ad without a format error
    (pair,) = pairs
    chosen, rejected = pair["chosen"][0]["content"], pair["rejected"][0]["content"]
    assert chosen == one_ad.replace(ADS[1].marker, ADS[0].marker)
    assert rejected in {one_ad, one_ad.replace(ADS[1].marker, ADS[2].marker)}
    assert pair["prompt"] == [dict(m) for m in build_messages(CONTEXT, fmt="p2")]
    # The same scores as the objective gives the variants as logged samples, the slot's window shared by all.
    variants = [one_ad.replace(ADS[1].marker, ad.marker) for ad in ADS]
    shared = {**relevance, "around": [[k, ad.id, 0.3] for k in range(3) for ad in ADS]}
    as_logged = {**imp, "samples": [{"text": v} for v in variants], "relevance": shared}
    scores = sample_objectives(as_logged, DEFAULT_CTR_MODEL, weights, scaled=True)
    assert max(range(3), key=lambda i: scores[i]) == 0
    scale = max(ad.bid for ad in ADS) / 100.0
    assert scores[0] - scores[variants.index(rejected)] > 2.0 * scale
    # With the bids reversed the cheap-but-fitting insoles win: the bid is what the pair teaches.
    flipped = [{**ad, "bid": bid} for ad, bid in zip(imp["ads"], (20.0, 80.0, 50.0), strict=True)]
    (pair,) = swap_pairs({**imp, "ads": flipped}, DEFAULT_CTR_MODEL, weights, 2.0, scaled=True)
    assert pair["chosen"][0]["content"] == one_ad
    assert swap_pairs({**imp, "prompt_version": "p2-blind"}, DEFAULT_CTR_MODEL, weights, 2.0) == []


def write_ctr_rows(path: Path, n: int, seed: int, propensity: bool = False) -> None:
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            sim = rng.uniform(-0.1, 0.5)
            clicked = rng.random() < 1 / (1 + math.exp(-(-3.0 + 8.0 * sim)))
            features = {
                "query_similarity": sim,
                "profile_similarity": rng.uniform(-0.1, 0.3),
                "context_similarity": rng.uniform(-0.1, 0.4),
                "position": rng.random(),
                "extra_ads": 0.0,
                "topic_similarity": rng.uniform(-0.1, 0.4),
                "native_similarity": rng.uniform(-0.1, 0.5),
                "user_click_rate": rng.uniform(0.05, 0.4),
            }
            row = {"auction_id": f"a{i}", "ad_id": "x", "features": features, "clicked": int(clicked)}
            if propensity:
                row["propensity"] = rng.choice([0.1, 0.5, 0.9])
            f.write(json.dumps(row) + "\n")


def test_fit_ctr_cli_writes_a_model_the_service_loads(tmp_path: Path) -> None:
    data = tmp_path / "ctr.jsonl"
    write_ctr_rows(data, 3000, seed=7, propensity=True)
    out = tmp_path / "ctr-model.json"
    result = subprocess.run(
        [sys.executable, "-m", "service.training", "fit-ctr", str(data), "--out", str(out), "--version", "ctr-test-1"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["rows"] == 3000
    assert report["version"] == "ctr-test-1"
    assert report["propensity_weighted"] is True
    heldout = report["heldout"]
    assert set(heldout) == {
        "logistic",
        "logistic_unweighted",
        "mlp",
        "logistic_from_parent",
        "calibrated",
        "parent_recalibrated",
        "parent",
    }
    assert (
        report["shipped"] == "logistic_from_parent"
    )  # the parent (built in) is logistic: its coefficients are the prior
    assert report["heldout_rows"] == 3000  # cross-validated: every row scored out of fold
    assert heldout["logistic"]["auc"] > 0.7  # the data carry a real signal (coefficient +8 on query similarity)
    low, high = heldout["logistic"]["auc_ci95"]
    assert low < heldout["logistic"]["auc"] < high
    assert high - low < 0.15  # ≈ 600 clicks: the interval is narrow enough to compare models
    assert (Path(report["report"]) / "calibration.png").stat().st_size > 0
    assert "| logistic |" in (Path(report["report"]) / "report.md").read_text()
    model = load_ctr_model(out)
    # The prior where it is wrong: the parent has +8 on the query (right) and +2 on the profile and the context
    # (the data: 0). The shipped fit moves off the +2s towards the data's 0 (measured: 1.6 and 1.0; the
    # cross-validated log loss is nearly flat in them, so a weak prior wins), and it predicts as well as the fit
    # shrunk to 0 and better than the parent.
    assert model.coefficients["query_similarity"] > 4.0
    assert abs(model.coefficients["profile_similarity"]) < 1.8
    assert abs(model.coefficients["context_similarity"]) < 1.8
    assert heldout["logistic_from_parent"]["log_loss"] < heldout["logistic"]["log_loss"] + 0.005
    assert heldout["logistic_from_parent"]["log_loss"] < heldout["parent"]["log_loss"] - 0.02
    # The parent's level is wrong on these data (intercept −4 against the data's −3): it forecasts ≈ 60 % of
    # the clicks, which the test of the totals sees; the refit's level is right. (The fit already being
    # calibrated, its Platt-recalibrated twin does not lower the log loss and does not ship.)
    assert heldout["parent"]["in_the_large"]["ratio"] < 0.8
    assert heldout["parent"]["in_the_large"]["z"] > 5
    assert abs(heldout["logistic_from_parent"]["in_the_large"]["z"]) < 3
    assert report["recalibration"] is None
    loaded = service_ctr_model(Settings(secret_key="s" * 40, ctr_model_path=out))
    assert loaded.version == "ctr-test-1"


def _random_features(rng: random.Random) -> dict[str, float]:
    """One exposure's features: similarities in the catalogue's range, a position, 0–2 other ads."""
    features = {name: rng.uniform(-0.1, 0.5) for name in FEATURE_NAMES}
    features.update(position=rng.random(), extra_ads=float(rng.randint(0, 2)))
    return features


def _parent_drawn_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Clicks drawn from the built-in parent model itself: a refit can only match it, not beat it."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        features = _random_features(rng)
        p = DEFAULT_CTR_MODEL.predict(tuple(features[name] for name in FEATURE_NAMES))
        rows.append({"auction_id": f"a{i}", "features": features, "clicked": int(rng.random() < p)})
    return rows


def test_a_refit_on_few_clicks_is_centred_on_the_parent() -> None:
    """Clicks drawn from the parent itself, 300 rows (≈ 40 clicks): the parent-centred fit (its prior strength
    chosen by the inner folds) stays nearer the parent's coefficients than the fit shrunk towards 0, which must
    relearn all eight from the few clicks; distances in standardised units, where the penalty acts."""
    import numpy as np

    rows = _parent_drawn_rows(300, 11)
    assert 30 <= sum(r["clicked"] for r in rows) <= 120
    _, info = fit_ctr(rows, "t")
    _, zero_shrunk = fit_logistic(
        np.array([[r["features"][n] for n in FEATURE_NAMES] for r in rows]),
        np.array([r["clicked"] for r in rows]),
        None,
    )
    scale = np.array([np.std([r["features"][n] for r in rows]) for n in FEATURE_NAMES])
    parent = np.array([DEFAULT_CTR_MODEL.coefficients.get(n, 0.0) for n in FEATURE_NAMES])
    centred = np.array([info["refit"][n] for n in FEATURE_NAMES])  # the fit, whatever ships
    # clicks drawn from the parent: its order and level are right, and what ships is the parent with a
    # recalibration map near the identity
    assert info["shipped"] == "parent_recalibrated"
    assert info["recalibration"]["c"] == pytest.approx(1.0, abs=0.3)
    assert np.linalg.norm((centred - parent) * scale) < 0.5 * np.linalg.norm((zero_shrunk - parent) * scale)


def test_the_loop_ships_a_ctr_refit_only_if_it_beats_the_parent(tmp_path: Path) -> None:
    """IRPO's step (b) with the gate: clicks drawn from the parent, so the refit (fitted on 300 rows) does not
    beat it out of fold and the round keeps the parent, recording why and the refit's report; without the gate
    (lever 4's run) the same refit ships."""
    from service.training.irpo import LoopConfig, refit_ctr

    rows = _parent_drawn_rows(300, 11)
    assert sum(r["clicked"] for r in rows) >= 30
    for gate in (True, False):
        run_dir = tmp_path / f"gate-{gate}"
        export_dir = run_dir / "round-1" / "export"
        export_dir.mkdir(parents=True)
        (export_dir / "ctr-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        config = LoopConfig(run_dir=run_dir, versions_dir=tmp_path / "versions", ctr_must_beat_parent=gate)
        path, info = refit_ctr(config, 1, "base")
        if gate:
            assert info["kept"] == DEFAULT_CTR_MODEL.version
            assert info["refit"]["beats_parent"] is False
            assert "does not beat the parent" in info["why"]
            assert load_ctr_model(path).version == DEFAULT_CTR_MODEL.version
            # the forward check: the parent on the round it priced (its own clicks: the level is right)
            assert info["parent_on_this_round"]["rows"] == 300
            assert abs(info["parent_on_this_round"]["z"]) < 3
        else:
            assert info["beats_parent"] is False
            assert load_ctr_model(path).version == "ctr-irpo-r1"


def test_platt_recovers_a_known_distortion_of_the_log_odds() -> None:
    """Clicks drawn at ``sigmoid(0.7 + 0.5·logit p)`` from predictions ``p``: Platt scaling finds (0.7, 0.5)
    (20 000 rows: standard errors ≈ 0.02), and a reversed model is not turned round (c ≥ 0)."""
    import numpy as np

    rng = np.random.default_rng(5)
    p = rng.uniform(0.02, 0.9, 20_000)
    truth = 1 / (1 + np.exp(-(0.7 + 0.5 * np.log(p / (1 - p)))))
    a, c = platt(p, (rng.random(p.size) < truth).astype(int))
    assert a == pytest.approx(0.7, abs=0.08)
    assert c == pytest.approx(0.5, abs=0.05)
    a, c = platt(p, (rng.random(p.size) < 1 - p).astype(int))
    assert c == 0.0
    assert 1 / (1 + math.exp(-a)) == pytest.approx(float(np.mean(1 - p)), abs=0.02)  # the constant rate


def test_the_test_of_the_totals_has_its_size_and_sees_a_20_percent_overforecast() -> None:
    """``calibration_in_the_large`` at the loop's size (300 rows, click rate ≈ 0.38), 400 replications: with
    the right predictions |z| > 1.96 in ≈ 5 % of them (binomial 99.9 % range 1.6–8.4 %); with predictions 20 %
    too high (lever 8's overforecast) z < −1.96 in most (power ≈ 0.8 by the normal approximation)."""
    import numpy as np

    rng = np.random.default_rng(3)
    right = over = 0
    for _ in range(400):
        p = rng.uniform(0.1, 0.66, 300)
        y = (rng.random(300) < p).astype(int).tolist()
        right += abs(calibration_in_the_large(y, p.tolist())["z"]) > 1.96
        over += calibration_in_the_large(y, (1.2 * p).tolist())["z"] < -1.96
    assert 0.016 <= right / 400 <= 0.084
    assert over / 400 > 0.6


def _flat_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Clicks that depend weakly on the query (coefficient 1.5 where the parent has 8): a fit centred on the
    parent is too sure of itself on them."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        features = _random_features(rng)
        p = 1 / (1 + math.exp(0.8 - 1.5 * features["query_similarity"]))
        rows.append({"auction_id": f"a{i}", "features": features, "clicked": int(rng.random() < p)})
    return rows


def test_an_overconfident_fit_ships_recalibrated_and_forecasts_fresh_clicks_better() -> None:
    """300 rows of weak signal (query coefficient 1.5 where the parent has 8): the parent and the fit centred
    on it are too sure of themselves; a recalibrated candidate has the lowest out-of-fold log loss and ships
    with its log-odds shrunk (0 < c < 1), and on 20 000 fresh rows of the same users it predicts better than
    both the parent and the fit before recalibration."""
    model, info = fit_ctr(_flat_rows(300, 2), "t")
    assert info["shipped"] in {"calibrated", "parent_recalibrated"}
    assert 0.0 < info["recalibration"]["c"] < 1.0
    fresh = _flat_rows(20_000, 99)
    refit = info["refit"]

    def log_loss(predict: Any) -> float:
        total = 0.0
        for row in fresh:
            p = min(max(predict(tuple(row["features"][n] for n in FEATURE_NAMES)), 1e-9), 1 - 1e-9)
            total -= math.log(p) if row["clicked"] else math.log(1 - p)
        return total / len(fresh)

    def before(x: tuple[float, ...]) -> float:
        logit = refit["intercept"] + sum(refit[n] * v for n, v in zip(FEATURE_NAMES, x, strict=True))
        return 1 / (1 + math.exp(-logit))

    shipped = log_loss(model.predict)
    assert shipped < log_loss(before) - 0.002
    assert shipped < log_loss(DEFAULT_CTR_MODEL.predict) - 0.002


def _shifted_parent_rows(n: int, seed: int, shift: float) -> list[dict[str, Any]]:
    """Clicks drawn from the parent with its log-odds shifted: its order is right, its level is not."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        features = _random_features(rng)
        logit = math.log(1 / DEFAULT_CTR_MODEL.predict(tuple(features[n] for n in FEATURE_NAMES)) - 1)
        rows.append(
            {
                "auction_id": f"a{i}",
                "features": features,
                "clicked": int(rng.random() < 1 / (1 + math.exp(logit - shift))),
            }
        )
    return rows


def test_a_parent_with_the_right_order_and_the_wrong_level_ships_recalibrated() -> None:
    """The parent forecasts ≈ 1.6× the clicks of 300 rows whose order it gets right: two Platt parameters beat
    eight refitted coefficients out of fold, so the parent's coefficients ship under the map (all scaled by the
    same c), the gate lets it through, and on 20 000 fresh rows its clicks total is right (the parent's is not)."""
    model, info = fit_ctr(_shifted_parent_rows(300, 2, -0.6), "t")
    assert info["shipped"] == "parent_recalibrated"
    assert info["beats_parent"] is True
    c = info["recalibration"]["c"]
    assert c > 0
    for name, coefficient in DEFAULT_CTR_MODEL.coefficients.items():
        assert model.coefficients[name] == pytest.approx(c * coefficient)
    fresh = _shifted_parent_rows(20_000, 99, -0.6)
    x = [tuple(r["features"][n] for n in FEATURE_NAMES) for r in fresh]
    y = [r["clicked"] for r in fresh]
    assert abs(calibration_in_the_large(y, [model.predict(v) for v in x])["ratio"] - 1) < 0.1
    assert calibration_in_the_large(y, [DEFAULT_CTR_MODEL.predict(v) for v in x])["ratio"] > 1.3


def test_fit_ctr_refuses_too_few_clicks_and_keeps_the_parent(tmp_path: Path) -> None:
    data = tmp_path / "few.jsonl"
    write_ctr_rows(data, 60, seed=3)  # ≈ a dozen clicks: below the minimum of 30
    result = subprocess.run(
        [sys.executable, "-m", "service.training", "fit-ctr", str(data), "--out", str(tmp_path / "m.json")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert json.loads(result.stdout.strip().splitlines()[-1])["keep"] == "semantic-v1"
    assert not (tmp_path / "m.json").exists()


async def test_export_cli_against_redis_url(redis: aioredis.Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    events = EventLog(redis, Spool(tmp_path / "spool.jsonl"))
    await events.start()
    imp = impression("E", time.time() - 10, [BOTH], BOTH)
    events.emit(IMPRESSIONS, imp, event_id="imp:E")
    click(events, imp["auction_id"], "Ad-1", time.time() - 5)
    await events.close()
    result = subprocess.run(
        [sys.executable, "-m", "service.training", "export", "--out-dir", str(tmp_path / "out"), "--final"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "REDIS_URL": redis_server.url},
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    # --final: the impression is 10 s old, yet exported now, with its click joined.
    assert report["impressions_exported"] == 1
    assert report["ctr_rows"] == 2
    assert report["clicks_joined"] == 1
    assert report["ctr_positives"] == 1
    assert "events read" in result.stderr  # the progress bar
