from __future__ import annotations

import dataclasses

import pytest

from service.mechanism.payments import first_price, implied_value_per_click
from service.mechanism.types import Ad, AdvertiserKind


def test_first_price_is_bid_times_itctr(running_ads: tuple[Ad, ...]) -> None:
    payment = first_price(running_ads[0], 0.04)
    assert payment.price_per_click == 35.0
    assert payment.expected_payment == pytest.approx(1.4)


def test_not_exposed_pays_nothing_in_expectation(running_ads: tuple[Ad, ...]) -> None:
    assert first_price(running_ads[1], 0.0).expected_payment == 0.0


def test_value_maximiser_implied_value(running_ads: tuple[Ad, ...]) -> None:
    vm = running_ads[2]  # bid 60, target ROI 2 → implied value 120 per click
    assert implied_value_per_click(vm) == 120.0
    payment = first_price(vm, 0.1)
    assert payment.price_per_click == 60.0
    assert payment.expected_payment == pytest.approx(6.0)


def test_ir_cap_for_roi_below_one(running_ads: tuple[Ad, ...]) -> None:
    vm = dataclasses.replace(running_ads[2], target_roi=0.5)
    payment = first_price(vm, 0.1)
    assert payment.price_per_click == 30.0
    assert payment.expected_payment == pytest.approx(3.0)


@pytest.mark.parametrize("kind", list(AdvertiserKind))
@pytest.mark.parametrize("roi", [0.25, 1.0, 3.0])
@pytest.mark.parametrize("itctr", [0.0, 0.013, 0.5, 1.0])
def test_individual_rationality(running_ads: tuple[Ad, ...], kind: AdvertiserKind, roi: float, itctr: float) -> None:
    ad = dataclasses.replace(running_ads[0], advertiser_kind=kind, target_roi=roi)
    payment = first_price(ad, itctr)
    assert payment.price_per_click <= ad.bid
    assert payment.price_per_click <= payment.implied_value_per_click
    assert payment.expected_payment <= payment.implied_value_per_click * itctr + 1e-12


def test_itctr_must_be_a_probability(running_ads: tuple[Ad, ...]) -> None:
    with pytest.raises(ValueError, match="probability"):
        first_price(running_ads[0], 1.5)
