from __future__ import annotations

import math

import pytest

from service.mechanism.itctr import estimate, estimate_all


def test_mean_and_standard_error_hand_checked() -> None:
    # values 0.2, 0, 0.1, 0.1: mean 0.1; sample variance (0.01+0.01+0+0)/3; stderr sqrt(var/4)
    est = estimate([0.2, 0.0, 0.1, 0.1])
    assert est.mean == pytest.approx(0.1)
    assert est.stderr == pytest.approx(math.sqrt((0.02 / 3) / 4))
    assert est.exposure_rate == 0.75


def test_never_exposed_is_zero_with_zero_error() -> None:
    est = estimate([0.0] * 8)
    assert est.mean == 0.0
    assert est.stderr == 0.0
    assert est.exposure_rate == 0.0


def test_single_sample_has_no_error_estimate() -> None:
    est = estimate([0.3])
    assert est.mean == 0.3
    assert est.stderr is None
    assert est.exposure_rate == 1.0


def test_matrix_columns_are_ads() -> None:
    ests = estimate_all([(0.5, 0.0), (0.0, 0.0), (0.25, 0.1)])
    assert [e.mean for e in ests] == pytest.approx([0.25, 0.1 / 3])
    assert [e.exposure_rate for e in ests] == pytest.approx([2 / 3, 1 / 3])


def test_empty_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        estimate([])
    with pytest.raises(ValueError, match="at least one sample"):
        estimate_all([])
