"""Approximate first-price payments (paper §4.2, Eq. 7).

Expected payment ``p_i = b_i · itctr_i``; billed as ``b_i`` per click on the exposed ad, whose expectation is the
same. Individual rationality: no advertiser is charged more than its bid-implied value per click. For a utility
maximiser the bid *is* the value. For an ROI-constrained value maximiser with target ROI ``τ`` the optimal bid is
``v/τ`` (Thm 4.5), so the implied value is ``τ·b``; the paper assumes ``τ ≥ 1``, where ``b ≤ τ·b`` already. For
``τ < 1`` the price per click is capped at ``τ·b`` so that IR still holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.mechanism.types import Ad, AdvertiserKind


@dataclass(frozen=True, slots=True)
class Payment:
    price_per_click: float
    expected_payment: float
    implied_value_per_click: float


def implied_value_per_click(ad: Ad) -> float:
    if ad.advertiser_kind is AdvertiserKind.VM:
        return ad.bid * ad.target_roi
    return ad.bid


def first_price(ad: Ad, itctr: float) -> Payment:
    if not 0.0 <= itctr <= 1.0:
        raise ValueError(f"itctr must be a probability, got {itctr}")
    value = implied_value_per_click(ad)
    price = min(ad.bid, value)
    return Payment(price_per_click=price, expected_payment=price * itctr, implied_value_per_click=value)
