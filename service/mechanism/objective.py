"""Per-response objective (paper Eq. 2/5 without the KL term): ``Σ_i b_i·ctr_i·1(a_i ∈ y) − λ·s_resp(y)``.

The paper's exact ``s_resp`` (Eq. 8) is not public; ours is linear: ``ad_penalty · N_ad(y) +
format_error_penalty · N_err(y)``. The defaults make one format error cost as much as the DPO pair threshold
δ = 10, so a broken sample always loses to a clean one of equal value. This is the reward that ranks samples
for preference training; it is reported, never used to choose what is served.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ObjectiveWeights:
    lam: float = 1.0
    ad_penalty: float = 1.0
    format_error_penalty: float = 10.0


def response_penalty(n_ads: int, n_format_errors: int, weights: ObjectiveWeights) -> float:
    """``s_resp(y)``."""
    return weights.ad_penalty * n_ads + weights.format_error_penalty * n_format_errors


def sample_objective(
    bids: Sequence[float],
    exposed_ctrs: Sequence[float],
    n_ads: int,
    n_format_errors: int,
    weights: ObjectiveWeights,
) -> float:
    """``exposed_ctrs[i]`` is ``ctr_i·1(a_i ∈ y)`` (0 for ads the response does not expose)."""
    value = math.fsum(b * c for b, c in zip(bids, exposed_ctrs, strict=True))
    return value - weights.lam * response_penalty(n_ads, n_format_errors, weights)


REFERENCE_BID = 100.0  # the top of the catalogue's bid range: value-scaled weights are stated at this bid


def value_scale(bids: Sequence[float], reference_bid: float = REFERENCE_BID) -> float:
    """``s = max_i b_i / reference_bid``: the context's value scale (1 when its top bid is the reference)."""
    return max(bids, default=reference_bid) / reference_bid


def value_scaled(
    weights: ObjectiveWeights, bids: Sequence[float], reference_bid: float = REFERENCE_BID
) -> ObjectiveWeights:
    """The penalties on the context's value scale (issue 16): ``ad_penalty·s`` and ``format_error_penalty·s``.

    Why: an ad is worth ``b_i·ctr_i`` — up to ``max_i b_i`` — so a fixed penalty is huge in a low-bid context and
    negligible in a high-bid one. With the training loop's weights (ad 1, format error 100 at the reference bid
    100) a format error costs ``max_i b_i``, a sure click on the best bid: more than any ad's value (ctr ≤ 1),
    so a broken marker always loses, while a relevant ad at a high bid (80 × 0.15 = 12 against an ad cost of
    0.8) is always worth more than no ad."""
    scale = value_scale(bids, reference_bid)
    return ObjectiveWeights(weights.lam, weights.ad_penalty * scale, weights.format_error_penalty * scale)
