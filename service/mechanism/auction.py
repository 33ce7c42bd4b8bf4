"""One auction's mechanism, from K sampled responses to exposures, ITCTR, payments and the served sample.

Pure: the caller brings the samples (from the engine) and takes the outcome (to the client and the log).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from service.mechanism import exposure as exposure_mod
from service.mechanism.ctr import CTRModel, ctr_row
from service.mechanism.exposure import Exposure
from service.mechanism.itctr import Estimate, estimate_all
from service.mechanism.objective import ObjectiveWeights, sample_objective
from service.mechanism.payments import Payment, first_price
from service.mechanism.types import AuctionContext


def draw_served_index(auction_id: str, k: int) -> int:
    """A uniform draw from 0..k-1 seeded by the auction id, so the served answer is a true sample y ~ π_θ
    and anyone holding the log can recompute which one was served."""
    if k < 1:
        raise ValueError("k must be at least 1")
    digest = hashlib.sha256(auction_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % k  # bias ≤ k/2^64: negligible


@dataclass(frozen=True, slots=True)
class AdOutcome:
    ad_id: str
    exposed_in_served: bool
    itctr: Estimate
    payment: Payment


@dataclass(frozen=True, slots=True)
class AuctionOutcome:
    exposures: tuple[Exposure, ...]  # one per sample
    ctr_matrix: tuple[tuple[float, ...], ...]  # K×n: ctr_i(y_k)·1(a_i ∈ y_k)
    objectives: tuple[float, ...]  # per sample
    served_index: int
    ads: tuple[AdOutcome, ...]  # candidate order

    @property
    def served(self) -> Exposure:
        return self.exposures[self.served_index]

    @property
    def expected_revenue(self) -> float:
        return sum(ad.payment.expected_payment for ad in self.ads)


def run(
    context: AuctionContext,
    samples: Sequence[str],
    auction_id: str,
    ctr_model: CTRModel,
    weights: ObjectiveWeights,
) -> AuctionOutcome:
    if not samples:
        raise ValueError("an auction needs at least one sample")
    exposures = tuple(exposure_mod.parse(text, context.ads) for text in samples)
    matrix = tuple(ctr_row(context, e, ctr_model) for e in exposures)
    bids = [ad.bid for ad in context.ads]
    objectives = tuple(
        sample_objective(bids, row, e.n_ads, len(e.errors), weights) for e, row in zip(exposures, matrix, strict=True)
    )
    served_index = draw_served_index(auction_id, len(samples))
    served = set(exposures[served_index].exposed)
    estimates = estimate_all(matrix)
    ads = tuple(
        AdOutcome(
            ad_id=ad.id,
            exposed_in_served=ad.id in served,
            itctr=est,
            payment=first_price(ad, est.mean),
        )
        for ad, est in zip(context.ads, estimates, strict=True)
    )
    return AuctionOutcome(
        exposures=exposures,
        ctr_matrix=matrix,
        objectives=objectives,
        served_index=served_index,
        ads=ads,
    )
