"""ITCTR (paper Def. 3.1) estimated from K samples of the allocation rule.

``itctr_i = E_y[ctr_i(x,h,a_i,y)·1(a_i ∈ y)]`` is estimated by the sample mean over the K responses, with the
standard error of that mean (sample standard deviation, ddof=1, over √K); with K = 1 there is no error estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Estimate:
    mean: float
    stderr: float | None
    exposure_rate: float  # share of the K samples that expose the ad


def estimate(values: Sequence[float]) -> Estimate:
    """Mean and its standard error of one ad's per-sample ``ctr·1(exposed)`` values."""
    k = len(values)
    if k == 0:
        raise ValueError("ITCTR needs at least one sample")
    mean = math.fsum(values) / k
    exposure_rate = sum(1 for v in values if v > 0.0) / k
    if k == 1:
        return Estimate(mean=mean, stderr=None, exposure_rate=exposure_rate)
    variance = math.fsum((v - mean) ** 2 for v in values) / (k - 1)
    return Estimate(mean=mean, stderr=math.sqrt(variance / k), exposure_rate=exposure_rate)


def estimate_all(ctr_matrix: Sequence[Sequence[float]]) -> tuple[Estimate, ...]:
    """Per-ad estimates from a K×n matrix (row = sample, column = candidate ad)."""
    if not ctr_matrix:
        raise ValueError("ITCTR needs at least one sample")
    n = len(ctr_matrix[0])
    return tuple(estimate([row[i] for row in ctr_matrix]) for i in range(n))
