from __future__ import annotations

import pytest

from service.mechanism.objective import ObjectiveWeights, response_penalty, sample_objective


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
