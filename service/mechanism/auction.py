"""One auction's mechanism, from K sampled responses to exposures, the served sample, ITCTR and payments.

Pure: the caller brings the samples (from the engine) and takes the outcome (to the client and the log).
The rule (``MechanismRule``) is chosen per deployment or request: the selection (``selection``: uniform, the
paper; or the objective's optimum, softmax at T) and the payment (``payments``: first price, the paper; or
Myerson, IC for utility maximisers given the samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from service.mechanism import exposure as exposure_mod
from service.mechanism import selection
from service.mechanism.ctr import CTRModel, ctr_row
from service.mechanism.exposure import Exposure
from service.mechanism.itctr import Estimate, weighted
from service.mechanism.objective import ObjectiveWeights, sample_objective
from service.mechanism.payments import Payment, PaymentRule, first_price, myerson
from service.mechanism.relevance import NO_RELEVANCE, Relevance
from service.mechanism.selection import Selection, SelectionRule
from service.mechanism.types import AuctionContext

draw_served_index = selection.draw_uniform  # the paper's uniform draw, seeded by the auction id


@dataclass(frozen=True, slots=True)
class MechanismRule:
    rule: SelectionRule = field(default_factory=SelectionRule)
    payment: PaymentRule = PaymentRule.FIRST_PRICE

    @property
    def temperature(self) -> float:
        return self.rule.effective_temperature

    def describe(self) -> dict[str, object]:
        t = self.rule.effective_temperature
        return {"selection": self.rule.selection.value, "temperature": None if t == float("inf") else t,
                "payment": self.payment.value}  # fmt: skip


UNIFORM_FIRST_PRICE = MechanismRule(SelectionRule(Selection.UNIFORM), PaymentRule.FIRST_PRICE)  # the paper


@dataclass(frozen=True, slots=True)
class AdOutcome:
    ad_id: str
    exposed_in_served: bool
    itctr: Estimate  # of the served distribution q
    payment: Payment
    curve: tuple[float, ...] | None = None  # Y_i at the requested bid grid


@dataclass(frozen=True, slots=True)
class AuctionOutcome:
    exposures: tuple[Exposure, ...]  # one per sample
    objectives: tuple[float, ...]  # O_k per sample
    probabilities: tuple[float, ...]  # q_k: how likely each sample was to be served
    served_index: int
    ads: tuple[AdOutcome, ...]  # candidate order
    rule: MechanismRule
    relevance: Relevance = NO_RELEVANCE  # the similarities the CTR model priced with (logged for refits)

    @property
    def served(self) -> Exposure:
        return self.exposures[self.served_index]

    @property
    def expected_revenue(self) -> float:
        return sum(ad.payment.expected_payment for ad in self.ads)


def parse_samples(
    context: AuctionContext, samples: Sequence[str], finish_reasons: Sequence[str | None] | None = None
) -> tuple[Exposure, ...]:
    """Each sample's exposures; a sample cut at ``max_tokens`` ("length") may end in half a marker."""
    reasons = finish_reasons or [None] * len(samples)
    return tuple(
        exposure_mod.parse(text, context.ads, truncated=reason == "length")
        for text, reason in zip(samples, reasons, strict=True)
    )


def run(
    context: AuctionContext,
    samples: Sequence[str],
    auction_id: str,
    ctr_model: CTRModel,
    weights: ObjectiveWeights,
    rule: MechanismRule = UNIFORM_FIRST_PRICE,
    finish_reasons: Sequence[str | None] | None = None,
    curve_grid: Sequence[float] | None = None,
    relevance: Relevance = NO_RELEVANCE,
    exposures: Sequence[Exposure] | None = None,
) -> AuctionOutcome:
    """``finish_reasons``: per sample; a sample cut at ``max_tokens`` ("length") may end in half a marker.
    ``curve_grid``: bids at which to report each ad's ITCTR curve, the other bids fixed (transparency).
    ``relevance``: the encoder's similarities for the CTR model; ``exposures``: the samples already parsed (by
    ``parse_samples``, the same way), so that the caller could compute ``relevance`` from them."""
    if not samples:
        raise ValueError("an auction needs at least one sample")
    parsed = tuple(exposures) if exposures is not None else parse_samples(context, samples, finish_reasons)
    matrix = [ctr_row(context, e, ctr_model, relevance, k) for k, e in enumerate(parsed)]
    bids = [ad.bid for ad in context.ads]
    objectives = tuple(
        sample_objective(bids, row, e.n_ads, len(e.errors), weights) for e, row in zip(parsed, matrix, strict=True)
    )
    temperature = rule.temperature
    q = selection.probabilities(objectives, temperature)
    log_z = None if temperature == float("inf") else selection.log_partition(objectives, temperature)
    served_index = selection.draw(auction_id, q)
    served = set(parsed[served_index].exposed)
    ads = []
    for i, ad in enumerate(context.ads):
        column = [row[i] for row in matrix]
        estimate = weighted(q, column)
        if rule.payment is PaymentRule.MYERSON:
            payment = myerson(ad, estimate.mean, objectives, column, temperature, log_z)
        else:
            payment = first_price(ad, estimate.mean)
        curve = None
        if curve_grid is not None:
            curve = selection.curve(objectives, column, ad.bid, curve_grid, temperature)
        ads.append(AdOutcome(ad.id, ad.id in served, estimate, payment, curve))
    return AuctionOutcome(
        exposures=parsed,
        objectives=objectives,
        probabilities=q,
        served_index=served_index,
        ads=tuple(ads),
        rule=rule,
        relevance=relevance,
    )
