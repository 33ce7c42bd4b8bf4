from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.evaluation.metrics import (
    Sweep,
    answer_relevance,
    auction_row,
    auction_stats,
    mean_ci,
    paired_differences,
    pooled_slope,
    revenue_ceiling,
    summarize,
    summarize_sweeps,
    sweep_of,
)
from service.mechanism.itctr import Estimate
from service.mechanism.types import Ad, AdvertiserKind, AuctionContext
from service.simulation.contexts import CatalogContext
from service.simulation.users import click_expectations

ADS = (
    Ad("Ad-7001", "ArchGuard Stability Runner", "https://example.com/running/archguard-stability-runner", 80.0),
    Ad("Ad-7002", "CloudStep Orthotic Insoles", "https://example.com/running/cloudstep-orthotic-insoles", 20.0),
    Ad("Ad-7027", "SteamLine Espresso Machine", "https://example.com/coffee/steamline-espresso-machine", 90.0),
)
ITEM = CatalogContext(
    "q001",
    "running",
    AuctionContext("I have flat feet and want to start running. What should I look for in a shoe?", "u1", {}, ADS),
)
BEST = "For flat feet pick a stable running shoe like @ArchGuard Stability Runner@[Ad-7001]."
OTHER = "Insoles help flat feet when running: @CloudStep Orthotic Insoles@[Ad-7002]."
WRONG = "Try @SteamLine Espresso Machine@[Ad-7027]."
BROKEN = "Try @ArchGuard Stability Runner@[Ad-9999]."
PLAIN = "Look for arch support."


def response(texts: list[str], ads: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    default = [{"id": a.id, "price_per_click": a.bid, "itctr": 0.1, "expected_payment": a.bid * 0.1} for a in ADS]
    return {"sample_texts": texts, "ads": default if ads is None else ads}


def test_auction_stats_count_valid_relevant_and_best_samples() -> None:
    stats = auction_stats(ITEM, response([BEST, OTHER, WRONG, BROKEN, PLAIN]))
    assert stats.samples == 5
    assert stats.valid == 3  # BEST, OTHER, WRONG: well-formed markers of candidates
    assert stats.relevant == 2
    assert stats.best == 1
    assert stats.format_errors == 1
    assert stats.ads_shown == 3
    assert stats.ir_violations == 0


def test_revenue_is_bid_times_simulated_itctr_and_reward_subtracts_the_penalty() -> None:
    texts = [BEST, PLAIN, BROKEN]
    stats = auction_stats(ITEM, response(texts))
    p_best = click_expectations(ITEM.context, BEST)["Ad-7001"]
    assert stats.itctr["Ad-7001"].mean == pytest.approx(p_best / 3)
    assert stats.itctr["Ad-7002"].mean == 0.0
    assert stats.revenue == pytest.approx(80.0 * p_best / 3)
    # rewards: BEST 80·p − 1 (one ad), PLAIN 0, BROKEN −10 (one format error)
    assert stats.reward == pytest.approx((80.0 * p_best - 1.0 + 0.0 - 10.0) / 3)
    assert stats.billed_revenue == pytest.approx(sum(a.bid * 0.1 for a in ADS))


def test_a_marker_cut_at_the_token_limit_is_a_format_error_as_the_service_counts_it() -> None:
    """A sample that stopped at max_tokens inside a marker: without the finish reasons the half marker looks like
    text (the evaluation's bug before 2026-12-06 13:50), with them it is a truncated marker, as in the service."""
    cut = "Insoles help: @CloudStep Orthotic Insoles@[Ad-70"
    blind = auction_stats(ITEM, response([cut, PLAIN]))
    told = auction_stats(ITEM, response([cut, PLAIN]) | {"sample_finish_reasons": ["length", "stop"]})
    assert blind.format_errors == 0
    assert told.format_errors == 1
    assert told.reward < blind.reward  # the penalty of a format error
    finished = auction_stats(ITEM, response([PLAIN, PLAIN]) | {"sample_finish_reasons": ["length", "stop"]})
    assert finished.format_errors == 0  # cut at the limit, but not inside a marker


def test_ir_violations_are_counted() -> None:
    ads = [
        {"id": "Ad-7001", "price_per_click": 81.0, "itctr": 0.1, "expected_payment": 8.0},  # charges over the bid
        {"id": "Ad-7002", "price_per_click": 20.0, "itctr": 0.1, "expected_payment": 2.5},  # over b·itctr
        {"id": "Ad-7027", "price_per_click": 90.0, "itctr": 0.1, "expected_payment": 9.0},
    ]
    assert auction_stats(ITEM, response([PLAIN], ads)).ir_violations == 2


def test_the_oracle_serves_the_sample_with_the_best_true_reward() -> None:
    stats = auction_stats(ITEM, response([PLAIN, BROKEN, BEST, WRONG]))
    p_best = click_expectations(ITEM.context, BEST)["Ad-7001"]
    assert stats.oracle_revenue == pytest.approx(80.0 * p_best)  # 80·p − 1 beats 0, −10 and the espresso ad
    assert stats.oracle_reward == pytest.approx(80.0 * p_best - 1.0)
    assert stats.oracle_reward >= stats.reward  # never below the uniform draw over the same samples
    nothing = auction_stats(ITEM, response([PLAIN, BROKEN]))
    assert (nothing.oracle_revenue, nothing.oracle_reward) == (0.0, 0.0)  # no ad beats a broken one


FILLER = (
    "Look for a stable shoe with arch support.",
    "Start slowly, three short runs a week.",
    "Espresso wants a fine grind.",
    "Replace shoes every 500 miles.",
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shown=st.lists(st.sampled_from(ADS), min_size=1, max_size=3, unique=True),
    sentences=st.lists(st.sampled_from(FILLER), max_size=4),
    where=st.lists(st.integers(0, 4), min_size=3, max_size=3),
    woven=st.lists(st.booleans(), min_size=3, max_size=3),
    seed=st.integers(0, 3),
)
def test_no_answer_earns_more_than_the_ceiling_bound(
    shown: list[Ad], sentences: list[str], where: list[int], woven: list[bool], seed: int
) -> None:
    """Any answer — ads anywhere among sentences on or off the question, competitors, a flood — stays within
    the bound; the answers written for the ceiling stay within it too."""
    parts = list(sentences)
    for ad, at, on_topic in zip(shown, where, woven, strict=False):
        marker = f"@{ad.title}@[{ad.id}]"
        sentence = f"{marker} suits flat feet when you start running." if on_topic else f"Consider {marker} too."
        parts.insert(min(at, len(parts)), sentence)
    answer = " ".join(parts)
    earned = math.fsum(
        {a.id: a.bid for a in ADS}[i] * p for i, p in click_expectations(ITEM.context, answer, seed=seed).items()
    )
    ceiling = revenue_ceiling(ITEM, click_seed=seed)
    assert earned <= ceiling.bound + 1e-9
    assert 0.0 < ceiling.written <= ceiling.bound + 1e-9


def test_the_ceiling_is_tight_for_one_ad_and_loose_only_by_what_two_ads_cannot_share() -> None:
    singles = [revenue_ceiling(dataclasses.replace(ITEM, context=dataclasses.replace(ITEM.context, ads=(ad,))))
               for ad in ADS]  # fmt: skip
    for single in singles:
        # One ad at the start of a sentence about the question is the best any answer can do with it.
        assert single.written == pytest.approx(single.bound, rel=1e-6)
    both = revenue_ceiling(ITEM)
    # Every ad counts at its own best, wherever it stands among the others: the two best singles.
    assert both.bound == pytest.approx(sum(sorted(s.bound for s in singles)[-2:]), rel=1e-6)
    # Two ads cannot both sit at position 0: the bound exceeds the best written answer, by less than the
    # second ad's share of it.
    assert both.written < both.bound < 2 * both.written


def test_answer_relevance_reads_the_text_around_the_markers() -> None:
    on_topic = "Look for a stable shoe with arch support and a firm heel: @ArchGuard Stability Runner@[Ad-7001]."
    off_topic = "Espresso needs a fine grind and water at 93 degrees: @ArchGuard Stability Runner@[Ad-7001]."
    only_marker = "@ArchGuard Stability Runner@[Ad-7001]"
    on, off, empty = answer_relevance(ITEM.context.query, [on_topic, off_topic, only_marker])
    assert on > off + 0.2  # the same marker, so the difference is the answer's
    assert empty == 0.0


def test_mean_ci_is_the_t_interval() -> None:
    mean, low, high = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert low is not None
    assert high is not None
    assert (high - low) / 2 == pytest.approx(3.182 * math.sqrt(5 / 3 / 4), rel=1e-3)  # t(0.975, 3) = 3.182
    assert mean_ci([7.0]) == (7.0, None, None)


def test_summarize_averages_per_query_and_per_sample() -> None:
    a = auction_stats(ITEM, response([BEST, PLAIN]))
    b = auction_stats(ITEM, response([WRONG, WRONG]))
    summary = summarize([a, b])
    assert summary["auctions"] == 2
    assert summary["samples"] == 4
    assert summary["valid_ad_share"] == 3 / 4
    assert summary["revenue_per_query"] == pytest.approx((a.revenue + b.revenue) / 2)
    # expected payments (priced at ITCTR 0.1 each here) minus the simulated clicks' worth, auction by auction
    gaps = [a.billed_revenue - a.revenue, b.billed_revenue - b.revenue]
    assert summary["overbilling_per_query"] == pytest.approx(sum(gaps) / 2)
    assert summary["overbilling_ci_low"] == pytest.approx(mean_ci(gaps)[1])
    with pytest.raises(ValueError, match="nothing"):
        summarize([])


def test_summarize_splits_the_valid_share_by_whether_an_ad_fits_the_question() -> None:
    # The same ads under an off-topic question (a category none of them is in): no candidate fits.
    off_topic = CatalogContext("q099", "weather", dataclasses.replace(ITEM.context, query="Will it rain today?"))
    on = auction_stats(ITEM, response([BEST, WRONG, PLAIN, PLAIN]))
    off = auction_stats(off_topic, response([WRONG, PLAIN]))
    assert (on.fitting, off.fitting) == (True, False)
    assert (on.relevant_shown, off.relevant_shown) == (1, 0)
    summary = summarize([on, off])
    assert summary["valid_ad_share_fitting"] == 2 / 4
    assert summary["valid_ad_share_unfitting"] == 1 / 2
    assert summary["relevant_exposure_share"] == 1 / 3  # one relevant of the three ads shown
    only_on = summarize([on])
    assert only_on["valid_ad_share_unfitting"] is None
    assert summarize([auction_stats(ITEM, response([PLAIN]))])["relevant_exposure_share"] is None


def test_sweep_shapes() -> None:
    rising = Sweep((1, 50, 100), (0.0, 0.1, 0.2), (0.0, 0.01, 0.01))
    dip = Sweep((1, 50, 100), (0.0, 0.3, 0.1), (0.0, 0.01, 0.01))
    noisy_dip = Sweep((1, 50, 100), (0.0, 0.3, 0.25), (0.0, 0.05, 0.05))
    inert = Sweep((1, 50, 100), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    assert rising.monotone
    assert rising.rising
    assert not rising.inert
    assert not dip.monotone
    assert dip.max_jump == pytest.approx(0.3)
    assert noisy_dip.monotone  # the step down is within two standard errors
    assert inert.inert
    assert inert.monotone
    assert not inert.rising
    summary = summarize_sweeps([rising, dip, noisy_dip, inert])
    assert summary["monotone_share"] == 3 / 4
    assert summary["monotone_share_live"] == 2 / 3
    assert summary["inert_sweeps"] == 1
    assert summary["rising_share"] == 3 / 4
    estimates = [Estimate(0.1, 0.02, 0.5), Estimate(0.2, None, 1.0)]
    assert sweep_of([1.0, 2.0], estimates) == Sweep((1.0, 2.0), (0.1, 0.2), (0.02, 0.0))
    assert math.isclose(summary["mean_max_jump"] or 0.0, (0.1 + 0.3 + 0.3 + 0.0) / 4)


def test_served_measures_weight_samples_by_the_serving_probabilities() -> None:
    texts = [BEST, BROKEN]
    stats = auction_stats(ITEM, {**response(texts), "probabilities": [0.9, 0.1]})
    p_best = click_expectations(ITEM.context, BEST)["Ad-7001"]
    assert stats.itctr["Ad-7001"].mean == pytest.approx(0.9 * p_best)
    assert stats.served_format_errors == pytest.approx(0.1)
    assert stats.served_relevant == pytest.approx(0.9)
    assert stats.reward == pytest.approx(0.9 * (80.0 * p_best - 1.0) + 0.1 * -10.0)


def test_a_value_maximisers_roi_violation_is_counted() -> None:
    vm = Ad("Ad-7001", ADS[0].title, ADS[0].url, 40.0, "adv", AdvertiserKind.VM, 2.0)  # bids v/τ: value 80/click
    item = CatalogContext(ITEM.query_id, ITEM.category, AuctionContext(ITEM.context.query, "u1", {}, (vm,)))
    fair = {"id": "Ad-7001", "price_per_click": 40.0, "itctr": 0.1, "expected_payment": 4.0}
    assert auction_stats(item, response([PLAIN], [fair])).ir_violations == 0
    # 4.5 > b·itctr = 4: over the bid-implied price, and value 80·0.1 = 8 < τ·p = 9 breaks the ROI target
    unfair = {**fair, "expected_payment": 4.5}
    assert auction_stats(item, response([PLAIN], [unfair])).ir_violations == 1


def test_pooled_slope_detects_a_rise_and_reports_a_flat_curve_as_flat() -> None:
    bids = [1.0, 25.0, 50.0, 75.0, 100.0]
    rng = __import__("random").Random(5)
    rising = [[0.1 + 0.2 * (b - 1) / 99 + rng.gauss(0, 0.05) for b in bids] for _ in range(16)]
    test = pooled_slope(rising, bids)
    assert test.sweeps == 16
    assert test.ci_low is not None
    assert test.ci_high is not None
    assert test.ci_low < 0.2 < test.ci_high
    assert test.direction == "rising"
    assert test.z is not None
    assert test.z > 3
    flat = [[0.3 + rng.gauss(0, 0.05) for _ in bids] for _ in range(16)]
    assert pooled_slope(flat, bids).direction == "flat (CI covers 0)"
    falling = [list(reversed(c)) for c in rising]
    assert pooled_slope(falling, bids).direction == "falling"  # both directions are reported
    # sweep fixed effects: very different levels per sweep do not hide a common slope
    shifted = [[y + 0.5 * s for y in c] for s, c in enumerate(rising)]
    assert pooled_slope(shifted, bids).delta == pytest.approx(test.delta)


def test_pooled_slope_needs_distinct_bids() -> None:
    with pytest.raises(ValueError, match="two distinct bids"):
        pooled_slope([[0.1, 0.2]], [5.0, 5.0])


def test_paired_differences_read_the_same_auctions_of_two_collections() -> None:
    better = [auction_row(ITEM, auction_stats(ITEM, response(texts))) for texts in ([BEST], [BEST, PLAIN], [OTHER])]
    worse = [auction_row(ITEM, auction_stats(ITEM, response(texts))) for texts in ([PLAIN], [BROKEN], [WRONG])]
    result = paired_differences(worse, better)
    differences = [b["reward"] - w["reward"] for w, b in zip(worse, better, strict=True)]
    assert result["reward"]["difference"] == pytest.approx(sum(differences) / 3)
    # the t interval of the per-auction differences, not of the two means
    assert (result["reward"]["ci_low"], result["reward"]["ci_high"]) == pytest.approx(mean_ci(differences)[1:])
    assert result["reward"]["difference"] > 0  # BROKEN costs 10
    assert result["format_error_share"]["difference"] == pytest.approx(-1 / 3)
    assert result["valid_ad_share"]["a"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="size"):
        paired_differences(worse, better[:2])
    moved = [dict(better[0], bids={"Ad-7001": 1.0}), *better[1:]]
    with pytest.raises(ValueError, match="same contexts"):
        paired_differences(worse, moved)
