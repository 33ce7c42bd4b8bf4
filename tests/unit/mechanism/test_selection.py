"""The served distribution q = softmax(O/T) over the K samples: monotone in each bid, uniform as T → ∞."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.mechanism import selection
from tests.unit.mechanism.test_payments import objectives, sample_sets, served, with_bid


@settings(max_examples=200, deadline=None)
@given(sample_sets(), st.floats(min_value=0.0, max_value=50.0))
def test_served_itctr_and_exposure_never_fall_when_the_own_bid_rises(
    case: tuple[list[list[float]], list[float], list[float], float], raise_by: float
) -> None:
    m, bids, penalties, t = case
    for i, b in enumerate(bids):
        higher = with_bid(bids, i, b + raise_by)
        assert served(m, higher, penalties, t, i) >= served(m, bids, penalties, t, i) - 1e-12
        exposed = [[1.0 if v > 0 else 0.0 for v in row] for row in m]

        def exposure(bs: list[float], i: int = i, exposed: list[list[float]] = exposed) -> float:
            q = selection.probabilities(objectives(m, bs, penalties), t)
            return selection.served_itctr(q, [row[i] for row in exposed])

        assert exposure(higher) >= exposure(bids) - 1e-12


@settings(max_examples=100, deadline=None)
@given(sample_sets())
def test_a_huge_temperature_is_the_uniform_draw(
    case: tuple[list[list[float]], list[float], list[float], float],
) -> None:
    m, bids, penalties, _ = case
    q = selection.probabilities(objectives(m, bids, penalties), 1e9)
    assert q == pytest.approx([1 / len(m)] * len(m), abs=1e-6)
    assert selection.probabilities(objectives(m, bids, penalties), math.inf) == (1 / len(m),) * len(m)


def test_log_partition_is_stable_for_tiny_temperatures() -> None:
    assert selection.log_partition([1000.0, 999.0], 1e-3) == pytest.approx(1000.0 / 1e-3)
    assert selection.probabilities([1000.0, 0.0], 1e-3) == (1.0, 0.0)


def test_a_broken_sample_is_essentially_never_served_while_a_clean_one_exists() -> None:
    # One format error costs 10 (the default penalty): at T = 0.5 its weight is e^-20 ≈ 2e-9 of a clean sample's.
    q = selection.probabilities([0.0, -10.0, 3.0, -7.0], 0.5)
    assert q[1] < 1e-8
    assert q[3] < 1e-6


def test_the_draw_follows_q_and_is_seeded_by_the_auction_id() -> None:
    q = (0.1, 0.6, 0.3)
    assert selection.draw("abc", q) == selection.draw("abc", q)
    counts = Counter(selection.draw(f"auction-{i}", q) for i in range(10_000))
    for k, p in enumerate(q):  # 4 standard deviations of a binomial count
        assert abs(counts[k] - 10_000 * p) < 4 * math.sqrt(10_000 * p * (1 - p))


def test_a_uniform_q_reproduces_the_papers_uniform_draw() -> None:
    for i in range(50):
        assert selection.draw(f"a{i}", (0.25,) * 4) == selection.draw_uniform(f"a{i}", 4)


def test_the_allocation_curve_recomputes_from_the_same_samples() -> None:
    m = [[0.5], [0.0], [0.2]]
    penalties = [1.0, 0.0, 1.0]
    objs = objectives(m, [10.0], penalties)
    grid = [0.0, 5.0, 10.0, 40.0]
    curve = selection.curve(objs, [row[0] for row in m], 10.0, grid, 0.5)
    assert curve == pytest.approx([served(m, [z], penalties, 0.5, 0) for z in grid])
    assert list(curve) == sorted(curve)
