"""Training data from logged events (pure, no I/O): CTR rows and DPO preference pairs.

- CTR rows: one per (auction, ad exposed in the *served* answer) — only those could be clicked — with the CTR
  model's features of that ad in that answer and the label "clicked" (a first click within the join window).
- DPO pairs (TRL ``DPOTrainer`` conversational format ``{"prompt", "chosen", "rejected"}``): per logged context,
  the best of its K samples by the objective against every sample more than δ below it (paper §4.1.2, δ = 10).
  The objective is recomputed with the given CTR model (e.g. one just refitted on clicks), as IRPO does.
- Ad-swap pairs (issue 16): a logged sample that names one ad, with that ad's marker replaced by each other
  candidate's; the best variant by the objective against one more than δ below. The two answers differ only
  in which ad they name, so the one thing DPO can learn from the pair is *which* ad to place.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from typing import Any

from service.mechanism import exposure as exposure_mod
from service.mechanism.ctr import FEATURE_NAMES, CTRModel, ctr_row, features
from service.mechanism.objective import ObjectiveWeights, sample_objective, value_scale, value_scaled
from service.mechanism.prompt import build_messages, prompt_format
from service.mechanism.relevance import Relevance
from service.mechanism.relevance import from_dict as relevance_from_dict
from service.mechanism.types import Ad, AuctionContext


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
    return [
        _objective(context, sample["text"], k, ctr_model, relevance, weights)
        for k, sample in enumerate(impression["samples"])
    ]


def _objective(
    context: AuctionContext, text: str, k: int, ctr_model: CTRModel, relevance: Relevance, weights: ObjectiveWeights
) -> float:
    """The objective of ``text`` as sample ``k`` of the context (its CTR features read at index ``k``)."""
    exposure = exposure_mod.parse(text, context.ads)
    row = ctr_row(context, exposure, ctr_model, relevance, k)
    return sample_objective([ad.bid for ad in context.ads], row, exposure.n_ads, len(exposure.errors), weights)


def _training_prompt(impression: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """The prompt the impression's samples were generated from, in its own format; None for a bid-blind or
    unknown prompt version (the policy learns with bids, in a prompt it knows)."""
    try:
        fmt = prompt_format(str(impression.get("prompt_version")))
    except ValueError:
        return None
    fit = {str(k): float(v) for k, v in (impression.get("prompt_fit") or {}).items()}
    return [dict(m) for m in build_messages(context_of(impression), fmt=fmt, fit=fit)]


def _pair(prompt: list[dict[str, str]], chosen: str, rejected: str) -> dict[str, Any]:
    """One pair in TRL's conversational preference format."""
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


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
    prompt = _training_prompt(impression)
    if prompt is None:
        return []
    samples = impression["samples"]
    scores = sample_objectives(impression, ctr_model, weights, scaled)
    if scaled:
        delta *= value_scale([ad.bid for ad in context_of(impression).ads])
    best = max(range(len(samples)), key=lambda i: scores[i])
    rejected = [i for i in range(len(samples)) if scores[best] - scores[i] > delta]
    if per_context is not None and len(rejected) > per_context:
        rejected = sorted(random.Random(str(impression.get("auction_id"))).sample(rejected, per_context))
    return [_pair(prompt, samples[best]["text"], samples[i]["text"]) for i in rejected]


def _swap_variants(impression: Mapping[str, Any], sample: int) -> tuple[str, list[str]] | None:
    """The sample's one ad and, per candidate, the sample with that ad's markers replaced by the candidate's
    marker; None unless the sample names exactly one ad and has no format error."""
    context = context_of(impression)
    text = str(impression["samples"][sample]["text"])
    exposure = exposure_mod.parse(text, context.ads)
    if exposure.n_ads != 1 or exposure.errors:
        return None
    variants = []
    for ad in context.ads:
        pieces, last = [], 0
        for placement in exposure.placements:
            pieces += [text[last : placement.start], ad.marker]
            last = placement.end
        variants.append("".join(pieces) + text[last:])
    return exposure.exposed[0], variants


def _slot_relevance(relevance: Relevance, sample: int, original: str, ads: Sequence[Ad]) -> Relevance:
    """Every candidate in the original ad's slot gets the slot's window similarities (``around``, ``native``):
    the window is the same text, the original's title left out (``relevance.window``), and the encoder that
    would compare it with another ad's text is not in this pure module. The ad's own similarities to the query,
    profile and topic are the logged ones for every candidate, so those and the bid rank the variants."""
    around = {**relevance.around, **{(sample, ad.id): relevance.around.get((sample, original), 0.0) for ad in ads}}
    native = {**relevance.native, **{(sample, ad.id): relevance.native.get((sample, original), 0.0) for ad in ads}}
    return dataclasses.replace(relevance, around=around, native=native)


def swap_pairs(
    impression: Mapping[str, Any],
    ctr_model: CTRModel,
    weights: ObjectiveWeights,
    delta: float,
    *,
    scaled: bool = False,
    per_context: int = 1,
) -> list[dict[str, Any]]:
    """Ad-swap pairs of one logged context: for up to ``per_context`` of its samples that name exactly one ad
    (drawn seeded by the auction id), the variant naming the best ad by the objective against a variant more
    than δ below it (drawn the same way); [] for a bid-blind or unknown prompt version.

    Why: the sample pairs of ``dpo_pairs`` differ in many ways at once (tips, length, where and how many ads),
    and 80 of them per round did not teach the model to follow bids (docs/irpo.md, lever 2: pooled slope
    +0.025 [−0.109, +0.158]). Here the prompt, the wording and the position are the model's own and only the
    ad differs, so the preference is the objective's ranking of the candidates in that slot — ``b_i·ctr_i``,
    with the CTR model's relevance in ``ctr_i``: a higher bid and a fitting ad win. Scored like
    ``sample_objectives`` (same CTR model, the value-scaled penalties and δ when ``scaled``), the slot's
    window features shared by every candidate (``_slot_relevance``)."""
    prompt = _training_prompt(impression)
    if prompt is None:
        return []
    context = context_of(impression)
    bids = [ad.bid for ad in context.ads]
    if scaled:
        weights = value_scaled(weights, bids)
        delta *= value_scale(bids)
    relevance = relevance_from_dict(impression.get("relevance"))
    rng = random.Random(f"swap:{impression.get('auction_id')}")
    swappable = {k: v for k in range(len(impression["samples"])) if (v := _swap_variants(impression, k))}
    pairs = []
    for k in rng.sample(sorted(swappable), min(per_context, len(swappable))):
        original, variants = swappable[k]
        slot = _slot_relevance(relevance, k, original, context.ads)
        scored = [(_objective(context, text, k, ctr_model, slot, weights), text) for text in variants]
        best_score, best_text = max(scored, key=lambda st: st[0])
        below = [text for score, text in scored if best_score - score > delta]
        if below:
            pairs.append(_pair(prompt, best_text, rng.choice(below)))
    return pairs
