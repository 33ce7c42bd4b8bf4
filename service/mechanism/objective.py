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
