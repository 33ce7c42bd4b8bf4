from __future__ import annotations

from collections import Counter

import pytest

from service.mechanism.auction import draw_served_index, run
from service.mechanism.ctr import DEFAULT_CTR_MODEL, ctr_row
from service.mechanism.exposure import parse
from service.mechanism.objective import ObjectiveWeights
from service.mechanism.types import AuctionContext

SAMPLES = (
    "Stability matters: @ArchGuard Stability Runner@[Ad-7001].",
    "Look for arch support.",
    "@CloudStep Orthotic Insoles@[Ad-7002] and @ArchGuard Stability Runner@[Ad-7001] both help.",
    "Try @Fake Shoe@[Ad-0000].",
)


def test_itctr_is_mean_over_samples_of_ctr_times_exposure(context: AuctionContext) -> None:
    outcome = run(context, SAMPLES, "auction-1", DEFAULT_CTR_MODEL, ObjectiveWeights())
    rows = [ctr_row(context, parse(s, context.ads), DEFAULT_CTR_MODEL) for s in SAMPLES]
    for i, ad in enumerate(outcome.ads):
        assert ad.itctr.mean == pytest.approx(sum(r[i] for r in rows) / 4)
        assert ad.payment.expected_payment == pytest.approx(context.ads[i].bid * ad.itctr.mean)
    assert outcome.ads[0].itctr.exposure_rate == 0.5
    assert outcome.ads[1].itctr.exposure_rate == 0.25
    assert outcome.ads[2].itctr.mean == 0.0


def test_served_sample_and_exposed_flags_agree(context: AuctionContext) -> None:
    for auction_id in ("a", "b", "c", "d", "e", "f"):
        outcome = run(context, SAMPLES, auction_id, DEFAULT_CTR_MODEL, ObjectiveWeights())
        assert outcome.served.text == SAMPLES[outcome.served_index]
        assert {a.ad_id for a in outcome.ads if a.exposed_in_served} == set(outcome.served.exposed)


def test_objective_penalises_format_errors(context: AuctionContext) -> None:
    outcome = run(context, SAMPLES, "x", DEFAULT_CTR_MODEL, ObjectiveWeights())
    assert outcome.objectives[1] == 0.0
    assert outcome.objectives[3] == -10.0


def test_served_index_is_seeded_by_auction_id_and_uniform() -> None:
    assert draw_served_index("abc", 8) == draw_served_index("abc", 8)
    counts = Counter(draw_served_index(f"auction-{i}", 8) for i in range(8000))
    assert set(counts) == set(range(8))
    # Each index expects 1000 draws; 4 standard deviations (≈ 4·30) is a generous band.
    assert all(abs(c - 1000) < 120 for c in counts.values())


def test_no_samples_is_an_error(context: AuctionContext) -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        run(context, [], "a", DEFAULT_CTR_MODEL, ObjectiveWeights())


def test_the_optimal_rule_reports_the_served_distribution_and_its_curve(context: AuctionContext) -> None:
    from service.mechanism.auction import MechanismRule
    from service.mechanism.payments import PaymentRule
    from service.mechanism.selection import Selection, SelectionRule

    rule = MechanismRule(SelectionRule(Selection.OPTIMAL, 0.5), PaymentRule.MYERSON)
    grid = [0.0, 35.0, 200.0]
    outcome = run(context, SAMPLES, "auction-1", DEFAULT_CTR_MODEL, ObjectiveWeights(), rule, curve_grid=grid)
    assert sum(outcome.probabilities) == pytest.approx(1.0)
    assert outcome.probabilities[3] < 1e-6  # "@Fake Shoe@[Ad-0000]" is a format error
    rows = [ctr_row(context, parse(s, context.ads), DEFAULT_CTR_MODEL) for s in SAMPLES]
    for i, ad in enumerate(outcome.ads):
        y = sum(q * r[i] for q, r in zip(outcome.probabilities, rows, strict=True))
        assert ad.itctr.mean == pytest.approx(y)
        assert 0.0 <= ad.payment.expected_payment <= context.ads[i].bid * y + 1e-12
        assert ad.curve is not None
        assert list(ad.curve) == sorted(ad.curve)
    assert outcome.ads[0].curve is not None
    assert outcome.ads[0].curve[1] == pytest.approx(outcome.ads[0].itctr.mean)  # 35 is Ad-7001's own bid
    unexposed = outcome.ads[2]  # no sample shows Ad-9001: an upper bound, not "0 ± 0"
    assert unexposed.itctr.stderr is None
    assert unexposed.itctr.upper == pytest.approx(3 / 4)


def test_a_marker_cut_at_max_tokens_is_a_format_error(context: AuctionContext) -> None:
    texts = ["Good arch support: @ArchGuard Stability Runner@[Ad-70"]
    cut = run(context, texts, "a", DEFAULT_CTR_MODEL, ObjectiveWeights(), finish_reasons=["length"])
    assert [e.kind.value for e in cut.exposures[0].errors] == ["truncated"]
    assert cut.objectives[0] == -10.0
    ended = run(context, texts, "a", DEFAULT_CTR_MODEL, ObjectiveWeights(), finish_reasons=["stop"])
    assert ended.objectives[0] == 0.0  # not cut: no claim that a marker was meant
