from __future__ import annotations

import pytest

from service.mechanism.objective import ObjectiveWeights, response_penalty, sample_objective, value_scaled


def test_penalty_is_linear_in_ads_and_errors() -> None:
    w = ObjectiveWeights(lam=1.0, ad_penalty=1.0, format_error_penalty=10.0)
    assert response_penalty(0, 0, w) == 0.0
    assert response_penalty(2, 1, w) == 12.0


def test_objective_hand_checked() -> None:
    w = ObjectiveWeights(lam=0.5, ad_penalty=2.0, format_error_penalty=10.0)
    # value 35·0.1 + 60·0.05 = 6.5; penalty λ·(2·2 + 10·1) = 7
    assert sample_objective([35.0, 12.5, 60.0], [0.1, 0.0, 0.05], 2, 1, w) == pytest.approx(-0.5)


def test_clean_sample_beats_same_value_with_format_error() -> None:
    w = ObjectiveWeights()
    clean = sample_objective([50.0], [0.2], 1, 0, w)
    broken = sample_objective([50.0], [0.2], 1, 1, w)
    assert clean - broken == pytest.approx(10.0)


def test_bids_and_ctrs_must_align() -> None:
    with pytest.raises(ValueError, match="shorter"):
        sample_objective([1.0, 2.0], [0.1], 1, 0, ObjectiveWeights())


def test_value_scaled_penalties_make_a_broken_marker_lose_and_a_good_ad_win() -> None:
    """Issue 16's objective, at any bid scale: a format error costs the top bid (more than any ad is worth, since
    ctr ≤ 1), and a relevant ad at a high bid is worth more than no ad."""

    base = ObjectiveWeights(1.0, 1.0, 100.0)
    for top in (2.0, 10.0, 50.0, 100.0):
        bids = [top, top / 2]
        weights = value_scaled(base, bids)
        no_ad = sample_objective(bids, [0.0, 0.0], 0, 0, weights)
        good_ad = sample_objective(bids, [0.15, 0.0], 1, 0, weights)
        best_possible_with_a_broken_marker = sample_objective(bids, [1.0, 0.0], 1, 1, weights)
        assert good_ad > no_ad
        assert best_possible_with_a_broken_marker < no_ad
        assert weights.format_error_penalty == top  # scaled: a sure click on the top bid
