"""How good is a model version as an auction? Pure statistics over served auctions (no I/O).

The yardstick is fixed across versions: the click simulator (``click_simulator``) plays the user, so a sample's
value is ``Σ_i b_i·P_sim(click i | y)`` whatever CTR model the version itself prices with. Per auction (K samples
``y_k`` of one context):

- ``itctr_i = mean_k P_sim(click i | y_k)`` (its standard error over the K samples);
- revenue = ``Σ_i b_i·itctr_i`` (first price: each click pays the bid);
- reward = ``mean_k [Σ_i b_i·P_sim(click i | y_k) − λ·s_resp(y_k)]`` (the objective without the KL term);
- per sample: a *valid ad* (≥ 1 well-formed marker of a candidate, no format error), a *relevant* ad (one of
  the query's category), the *best* ad (the relevant ad with the highest bid), a format error, the ad count.

A bid sweep (one ad's bid over a grid, everything else fixed) is *monotone* when no step down exceeds two
standard errors of the difference; ``rising`` when its ITCTR at the top bid exceeds the one at the lowest;
*inert* when the ad is never shown. Continuity is the largest ITCTR jump between neighbouring grid points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.mechanism import itctr
from service.mechanism.exposure import parse
from service.mechanism.objective import ObjectiveWeights, response_penalty
from service.training.click_simulator import ClickModel, click_expectations
from service.training.contexts import CatalogContext

IR_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class AuctionStats:
    samples: int
    valid: int
    relevant: int
    best: int
    format_errors: int  # samples with at least one
    ads_shown: int  # summed over samples
    itctr: dict[str, itctr.Estimate]
    revenue: float
    reward: float
    billed_revenue: float  # Σ expected_payment as the service priced it (its own CTR model)
    ir_violations: int


def auction_stats(
    item: CatalogContext,
    response: Mapping[str, Any],
    *,
    click_model: ClickModel | None = None,
    click_seed: int = 0,
    weights: ObjectiveWeights | None = None,
) -> AuctionStats:
    """Statistics of one served auction; ``response`` is the API's JSON with ``sample_texts``."""
    click_model = click_model or ClickModel()
    weights = weights or ObjectiveWeights()
    context = item.context
    texts: Sequence[str] = response["sample_texts"]
    relevant = item.relevant_ids
    best_bid = max((a.bid for a in context.ads if a.id in relevant), default=None)
    best_ids = {a.id for a in context.ads if a.id in relevant and a.bid == best_bid}
    per_sample_clicks: list[dict[str, float]] = []
    valid = relevant_n = best_n = errors_n = shown = 0
    rewards = []
    bids = {a.id: a.bid for a in context.ads}
    for text in texts:
        exposure = parse(text, context.ads)
        exposed = set(exposure.exposed)
        clicks = click_expectations(context, text, click_model, click_seed)
        per_sample_clicks.append(clicks)
        valid += bool(exposed) and not exposure.errors
        relevant_n += bool(exposed & relevant)
        best_n += bool(exposed & best_ids)
        errors_n += bool(exposure.errors)
        shown += len(exposed)
        value = math.fsum(bids[ad_id] * p for ad_id, p in clicks.items())
        rewards.append(value - weights.lam * response_penalty(exposure.n_ads, len(exposure.errors), weights))
    estimates = {ad.id: itctr.estimate([clicks.get(ad.id, 0.0) for clicks in per_sample_clicks]) for ad in context.ads}
    violations = 0
    for result in response["ads"]:
        bid = bids[result["id"]]
        over_bid = result["price_per_click"] > bid + IR_TOLERANCE
        over_value = result["expected_payment"] > bid * result["itctr"] + IR_TOLERANCE
        violations += over_bid or over_value
    return AuctionStats(
        samples=len(texts),
        valid=valid,
        relevant=relevant_n,
        best=best_n,
        format_errors=errors_n,
        ads_shown=shown,
        itctr=estimates,
        revenue=math.fsum(bids[i] * e.mean for i, e in estimates.items()),
        reward=math.fsum(rewards) / len(rewards),
        billed_revenue=math.fsum(r["expected_payment"] for r in response["ads"]),
        ir_violations=violations,
    )


def summarize(stats: Sequence[AuctionStats]) -> dict[str, float]:
    """Per-query and per-sample averages over auctions."""
    n = len(stats)
    samples = sum(s.samples for s in stats)
    if n == 0 or samples == 0:
        raise ValueError("nothing to summarize")
    return {
        "auctions": n,
        "samples": samples,
        "revenue_per_query": math.fsum(s.revenue for s in stats) / n,
        "reward_per_query": math.fsum(s.reward for s in stats) / n,
        "billed_revenue_per_query": math.fsum(s.billed_revenue for s in stats) / n,
        "valid_ad_share": sum(s.valid for s in stats) / samples,
        "relevant_ad_share": sum(s.relevant for s in stats) / samples,
        "best_ad_share": sum(s.best for s in stats) / samples,
        "format_error_share": sum(s.format_errors for s in stats) / samples,
        "ads_per_answer": sum(s.ads_shown for s in stats) / samples,
        "ir_violations": sum(s.ir_violations for s in stats),
    }


@dataclass(frozen=True, slots=True)
class Sweep:
    bids: tuple[float, ...]
    itctr: tuple[float, ...]
    stderr: tuple[float, ...]

    @property
    def inert(self) -> bool:
        return not any(self.itctr)

    @property
    def monotone(self) -> bool:
        return all(
            later >= earlier - 2.0 * math.hypot(se_a, se_b)
            for earlier, later, se_a, se_b in zip(
                self.itctr, self.itctr[1:], self.stderr, self.stderr[1:], strict=False
            )
        )

    @property
    def rising(self) -> bool:
        return self.itctr[-1] > self.itctr[0]

    @property
    def max_jump(self) -> float:
        return max((abs(b - a) for a, b in zip(self.itctr, self.itctr[1:], strict=False)), default=0.0)


def sweep_of(bids: Sequence[float], estimates: Sequence[itctr.Estimate]) -> Sweep:
    return Sweep(
        bids=tuple(bids),
        itctr=tuple(e.mean for e in estimates),
        stderr=tuple(e.stderr or 0.0 for e in estimates),
    )


def summarize_sweeps(sweeps: Sequence[Sweep]) -> dict[str, float | None]:
    live = [s for s in sweeps if not s.inert]
    return {
        "sweeps": len(sweeps),
        "inert_sweeps": len(sweeps) - len(live),
        "monotone_share": sum(s.monotone for s in sweeps) / len(sweeps) if sweeps else None,
        "monotone_share_live": sum(s.monotone for s in live) / len(live) if live else None,
        "rising_share": sum(s.rising for s in sweeps) / len(sweeps) if sweeps else None,
        "mean_max_jump": math.fsum(s.max_jump for s in sweeps) / len(sweeps) if sweeps else None,
    }
