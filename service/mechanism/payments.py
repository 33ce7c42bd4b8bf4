"""Payment rules, billed per click on an exposed ad (an ad nobody clicks pays nothing).

``first_price`` — the paper's rule (§4.2, Eq. 7): price per click ``b_i``, expected payment ``b_i·Y_i``. IR for
utility maximisers; for ROI-constrained value maximisers IC with optimal bid ``v/τ`` (Thm 4.5). Convention (the
paper's): a VM with target ROI τ bids ``v/τ`` and pays its bid per click, so its implied value per click is
``τ·b`` and IR (``v·Y ≥ τ·p``) holds for every τ; the paper assumes ``τ ≥ 1``, where value ≥ price too.

``myerson`` — the payment that makes the softmax selection (``selection``) incentive compatible for utility
maximisers, in closed form because ``Y_i = T·∂ log Z/∂b_i``:

    p_i = b_i·Y_i(b) − ∫_0^{b_i} Y_i(z, b_−i) dz = b_i·Y_i(b) − T·[log Z(b) − log Z(b_i = 0, b_−i)],

billed per click as ``p_i / Y_i`` (≤ b_i, so IR holds: ``0 ≤ p_i ≤ b_i·Y_i``). As T → 0 it becomes the
critical-bid payment of best-of-K; under the uniform draw (T = ∞) the allocation does not depend on the bid
given the samples, so the payment is 0. The guarantee holds for the whole mechanism only when the samples do not
depend on the bids (a bid-blind proposal); with bids in the prompt it holds given the samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from service.mechanism.selection import log_partition
from service.mechanism.types import Ad, AdvertiserKind


class PaymentRule(StrEnum):
    FIRST_PRICE = "first_price"
    MYERSON = "myerson"


@dataclass(frozen=True, slots=True)
class Payment:
    price_per_click: float
    expected_payment: float
    implied_value_per_click: float


def implied_value_per_click(ad: Ad) -> float:
    """The value per click the bid implies: the bid for a UM, ``τ·b`` for a VM (which bids ``v/τ``)."""
    if ad.advertiser_kind is AdvertiserKind.VM:
        return ad.bid * ad.target_roi
    return ad.bid


def first_price(ad: Ad, itctr: float) -> Payment:
    if not 0.0 <= itctr <= 1.0 + 1e-12:
        raise ValueError(f"itctr must be a probability, got {itctr}")
    return Payment(
        price_per_click=ad.bid, expected_payment=ad.bid * itctr, implied_value_per_click=implied_value_per_click(ad)
    )


def myerson_expected(
    bid: float,
    itctr: float,
    objectives: Sequence[float],
    column: Sequence[float],
    temperature: float,
    log_z: float | None = None,
) -> float:
    """``p_i`` of the closed form above; ``objectives`` at the submitted bids, ``column`` = ``m_i``; ``log_z``:
    ``log Z(b)`` when the caller has it (it is the same for every ad of an auction)."""
    if math.isinf(temperature):
        return 0.0
    if bid == 0.0 or not any(column):
        return 0.0  # Z does not depend on this bid: the allocation ignores it
    without = [o - bid * m for o, m in zip(objectives, column, strict=True)]
    full = log_z if log_z is not None else log_partition(objectives, temperature)
    rent = temperature * (full - log_partition(without, temperature))
    # Rounding can push the difference a hair outside [0, b·Y]; the exact value lies inside.
    return min(max(bid * itctr - rent, 0.0), bid * itctr)


def myerson(
    ad: Ad,
    itctr: float,
    objectives: Sequence[float],
    column: Sequence[float],
    temperature: float,
    log_z: float | None = None,
) -> Payment:
    expected = myerson_expected(ad.bid, itctr, objectives, column, temperature, log_z)
    price = min(ad.bid, expected / itctr) if itctr > 0 else 0.0
    return Payment(
        price_per_click=price, expected_payment=expected, implied_value_per_click=implied_value_per_click(ad)
    )
