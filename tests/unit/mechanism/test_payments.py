"""Payment rules: first price (the paper) and the closed-form Myerson payment of the softmax selection.

The property tests draw random sample sets (K samples × n ads of ``m_ik = ctr·1(exposed)`` and penalties) and
check the theory of ``service/mechanism/selection.py`` and ``payments.py`` on them: the closed form equals the
numerical integral of the allocation curve, truthful bidding maximises a utility maximiser's utility, payments
lie in ``[0, b·Y]``.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.mechanism import selection
from service.mechanism.payments import first_price, implied_value_per_click, myerson, myerson_expected
from service.mechanism.types import Ad, AdvertiserKind


def test_first_price_is_bid_times_itctr(running_ads: tuple[Ad, ...]) -> None:
    payment = first_price(running_ads[0], 0.04)
    assert payment.price_per_click == 35.0
    assert payment.expected_payment == pytest.approx(1.4)


def test_not_exposed_pays_nothing_in_expectation(running_ads: tuple[Ad, ...]) -> None:
    assert first_price(running_ads[1], 0.0).expected_payment == 0.0


def test_value_maximiser_pays_its_bid_and_implies_tau_times_bid(running_ads: tuple[Ad, ...]) -> None:
    vm = running_ads[2]  # bid 60 = v/τ with τ = 2 → implied value 120 per click, price 60 (the paper's convention)
    assert vm.advertiser_kind is AdvertiserKind.VM
    assert implied_value_per_click(vm) == 120.0
    payment = first_price(vm, 0.1)
    assert payment.price_per_click == 60.0
    assert payment.expected_payment == pytest.approx(6.0)
    # ROI constraint v·Y ≥ τ·p holds with equality at the optimal bid v/τ: IC and IR for the VM.
    assert payment.implied_value_per_click * 0.1 >= vm.target_roi * payment.expected_payment - 1e-12


# -- random sample sets --------------------------------------------------------------------------------------

K_SAMPLES = st.integers(min_value=2, max_value=8)


@st.composite
def sample_sets(draw: st.DrawFn) -> tuple[list[list[float]], list[float], list[float], float]:
    """(m: K×n ctr·exposure values, bids, penalties λ·s_k, temperature)."""
    k = draw(K_SAMPLES)
    n = draw(st.integers(min_value=1, max_value=4))
    ctr = st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=0.6))
    m = [[draw(ctr) for _ in range(n)] for _ in range(k)]
    bids = [draw(st.floats(min_value=0.0, max_value=100.0)) for _ in range(n)]
    penalties = [draw(st.sampled_from([0.0, 1.0, 2.0, 10.0, 11.0])) for _ in range(k)]
    temperature = draw(st.sampled_from([0.05, 0.5, 2.0, 10.0]))
    return m, bids, penalties, temperature


def objectives(m: list[list[float]], bids: list[float], penalties: list[float]) -> list[float]:
    return [math.fsum(b * v for b, v in zip(bids, row, strict=True)) - s for row, s in zip(m, penalties, strict=True)]


def served(m: list[list[float]], bids: list[float], penalties: list[float], t: float, i: int) -> float:
    q = selection.probabilities(objectives(m, bids, penalties), t)
    return selection.served_itctr(q, [row[i] for row in m])


def with_bid(bids: list[float], i: int, z: float) -> list[float]:
    return [z if j == i else b for j, b in enumerate(bids)]


@settings(max_examples=150, deadline=None)
@given(sample_sets())
def test_closed_form_payment_equals_the_integral_of_the_allocation_curve(
    case: tuple[list[list[float]], list[float], list[float], float],
) -> None:
    m, bids, penalties, t = case
    for i, b in enumerate(bids):
        column = [row[i] for row in m]
        y = served(m, bids, penalties, t, i)
        closed = myerson_expected(b, y, objectives(m, bids, penalties), column, t)
        # Simpson's rule on Y_i(z) over [0, b] (Y is smooth in z): p = b·Y(b) − ∫_0^b Y(z) dz.
        steps = 400
        h = b / steps
        ys = [served(m, with_bid(bids, i, j * h), penalties, t, i) for j in range(steps + 1)]
        integral = h / 3 * (ys[0] + ys[-1] + 4 * math.fsum(ys[1:-1:2]) + 2 * math.fsum(ys[2:-1:2]))
        assert closed == pytest.approx(b * y - integral, abs=1e-6 + 1e-3 * b * y)
        assert 0.0 <= closed <= b * y + 1e-12


@settings(max_examples=100, deadline=None)
@given(sample_sets(), st.floats(min_value=0.0, max_value=100.0))
def test_truthful_bidding_maximises_a_utility_maximisers_utility(
    case: tuple[list[list[float]], list[float], list[float], float], value: float
) -> None:
    m, bids, penalties, t = case
    i = 0
    column = [row[i] for row in m]

    def utility(bid: float) -> float:
        b = with_bid(bids, i, bid)
        y = served(m, b, penalties, t, i)
        return value * y - myerson_expected(bid, y, objectives(m, b, penalties), column, t)

    truthful = utility(value)
    for bid in [value * f for f in (0.0, 0.25, 0.5, 0.8, 0.95, 1.05, 1.25, 2.0, 4.0)] + [0.0, 1.0, 50.0, 150.0]:
        assert utility(bid) <= truthful + 1e-7 * max(1.0, value)


@settings(max_examples=100, deadline=None)
@given(sample_sets())
def test_per_click_price_never_exceeds_the_bid(case: tuple[list[list[float]], list[float], list[float], float]) -> None:
    m, bids, penalties, t = case
    objs = objectives(m, bids, penalties)
    for i, b in enumerate(bids):
        ad = Ad(f"A{i}", f"T{i}", "https://e.com", b)
        y = served(m, bids, penalties, t, i)
        payment = myerson(ad, y, objs, [row[i] for row in m], t)
        assert 0.0 <= payment.price_per_click <= b + 1e-12
        assert payment.expected_payment <= b * y + 1e-12


def test_myerson_under_the_uniform_draw_is_zero() -> None:
    # Given the samples, the uniform draw does not depend on the bid, so the IC payment is nothing.
    assert myerson_expected(50.0, 0.2, [1.0, 2.0], [0.4, 0.0], math.inf) == 0.0


def test_myerson_approaches_the_critical_bid_of_best_of_k() -> None:
    # Two samples: k=0 shows ad 0 (m = 0.5, no penalty), k=1 shows nothing but has objective 10.
    # Best-of-K serves k=0 iff 0.5·b > 10, i.e. b > 20 = the critical bid; the per-click price tends to 20.
    bid = 60.0
    objs = [0.5 * bid, 10.0]
    q = selection.probabilities(objs, 0.01)
    y = selection.served_itctr(q, [0.5, 0.0])
    payment = myerson(Ad("A", "T", "https://e.com", bid), y, objs, [0.5, 0.0], 0.01)
    assert payment.price_per_click == pytest.approx(20.0, abs=0.05)
