"""Training data from logged events (pure, no I/O): CTR rows and DPO preference pairs.

- CTR rows: one per (auction, ad exposed in the *served* answer) — only those could be clicked — with the CTR
  model's features of that ad in that answer and the label "clicked" (a first click within the join window).
- DPO pairs (TRL ``DPOTrainer`` conversational format ``{"prompt", "chosen", "rejected"}``): per logged context,
  the best of its K samples by the objective against every sample more than δ below it (paper §4.1.2, δ = 10).
  The objective is recomputed with the given CTR model (e.g. one just refitted on clicks), as IRPO does.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from service.mechanism import exposure as exposure_mod
from service.mechanism.ctr import FEATURE_NAMES, CTRModel, ctr_row, features
from service.mechanism.objective import ObjectiveWeights, sample_objective, value_scale, value_scaled
from service.mechanism.prompt import build_messages, prompt_format
from service.mechanism.relevance import from_dict as relevance_from_dict
from service.mechanism.types import AuctionContext


def context_of(impression: Mapping[str, Any]) -> AuctionContext:
    return AuctionContext.from_dict(impression)


def ctr_rows(impression: Mapping[str, Any], clicked_ad_ids: set[str]) -> list[dict[str, Any]]:
    context = context_of(impression)
    served_index = impression["served_index"]
    served = impression["samples"][served_index]["text"]
    exposure = exposure_mod.parse(served, context.ads)
    relevance = relevance_from_dict(impression.get("relevance"))
    probabilities = impression.get("probabilities")
    propensity = float(probabilities[served_index]) if probabilities else None
    rows = []
    for ad in context.ads:
        if ad.id not in exposure.exposed:
            continue
        rows.append(
            {
                "auction_id": impression["auction_id"],
                "ad_id": ad.id,
                "ts": impression["ts"],
                "model": impression["model"],
                "ctr_model": impression["ctr_model"],
                "bid": ad.bid,
                "features": dict(
                    zip(FEATURE_NAMES, features(context, ad, exposure, relevance, served_index), strict=True)
                ),
                "clicked": int(ad.id in clicked_ad_ids),
                # P(this sample was served): a refit weights the row by 1/propensity under non-uniform selection
                "propensity": propensity,
            }
        )
    return rows


def sample_objectives(
    impression: Mapping[str, Any], ctr_model: CTRModel, weights: ObjectiveWeights, scaled: bool = False
) -> list[float]:
    """The objective of each logged sample; ``scaled``: penalties on the context's value scale (``value_scaled``)."""
    context = context_of(impression)
    bids = [ad.bid for ad in context.ads]
    if scaled:
        weights = value_scaled(weights, bids)
    relevance = relevance_from_dict(impression.get("relevance"))
    out = []
    for k, sample in enumerate(impression["samples"]):
        exposure = exposure_mod.parse(sample["text"], context.ads)
        row = ctr_row(context, exposure, ctr_model, relevance, k)
        out.append(sample_objective(bids, row, exposure.n_ads, len(exposure.errors), weights))
    return out


def dpo_pairs(
    impression: Mapping[str, Any],
    ctr_model: CTRModel,
    weights: ObjectiveWeights,
    delta: float,
    *,
    scaled: bool = False,
    per_context: int | None = None,
) -> list[dict[str, Any]]:
    """Best sample vs every sample more than ``delta`` below it, in the prompt the samples were generated from
    (the impression's format); [] for a bid-blind or unknown prompt version (the policy learns with bids).

    ``scaled``: penalties and δ on the context's value scale (``value_scaled``; δ·s), so that one threshold
    means the same in a context whose top bid is 5 and in one whose top bid is 100. ``per_context``: at most
    that many pairs per context (the rejected samples drawn seeded by the auction id), so that a context with
    many broken samples does not outweigh the others in the round's pairs."""
    try:
        fmt = prompt_format(str(impression.get("prompt_version")))
    except ValueError:
        return []
    samples = impression["samples"]
    scores = sample_objectives(impression, ctr_model, weights, scaled)
    if scaled:
        delta *= value_scale([ad.bid for ad in context_of(impression).ads])
    best = max(range(len(samples)), key=lambda i: scores[i])
    rejected = [i for i in range(len(samples)) if scores[best] - scores[i] > delta]
    if per_context is not None and len(rejected) > per_context:
        rejected = sorted(random.Random(str(impression.get("auction_id"))).sample(rejected, per_context))
    prompt = [dict(m) for m in build_messages(context_of(impression), fmt=fmt)]
    chosen = [{"role": "assistant", "content": samples[best]["text"]}]
    return [
        {"prompt": prompt, "chosen": chosen, "rejected": [{"role": "assistant", "content": samples[i]["text"]}]}
        for i in rejected
    ]
