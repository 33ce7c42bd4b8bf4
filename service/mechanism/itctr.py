"""ITCTR (paper Def. 3.1) of the served distribution, estimated from K samples of the allocation rule.

``itctr_i = E_y[ctr_i(x,h,a_i,y)·1(a_i ∈ y)]``. Under the uniform draw it is the sample mean over the K
responses; under the optimal selection it is the q-weighted mean ``Y_i = Σ_k q_k·ctr_ik·e_ik``. Its standard
error is the delta method's for a (self-normalised) weighted mean (``selection.weighted_stderr``), which is
the usual standard error of the mean (ddof = 1) when q is uniform. Where no sample exposes the ad, the
estimate is 0 with no standard error, and the honest statement is a bound: the rule of three, the proposal
exposes it with probability below ≈ 3/K at 95 % confidence (``upper``), not "0 ± 0".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.mechanism.selection import served_itctr, weighted_stderr

Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class Estimate:
    mean: float
    stderr: float | None
    exposure_rate: float  # X_i: the probability that the served answer shows the ad
    upper: float | None = None  # a 95 % upper bound on the ITCTR


def weighted(q: Sequence[float], values: Sequence[float]) -> Estimate:
    """ITCTR of one ad under serving distribution ``q`` from its per-sample ``ctr·1(exposed)`` values."""
    k = len(values)
    if k == 0:
        raise ValueError("ITCTR needs at least one sample")
    mean = served_itctr(q, values)
    exposure = served_itctr(q, [1.0 if v > 0.0 else 0.0 for v in values])
    if not any(v > 0.0 for v in values):
        return Estimate(mean=0.0, stderr=None, exposure_rate=0.0, upper=min(1.0, 3.0 / k))
    stderr = weighted_stderr(q, values)
    upper = min(1.0, mean + Z95 * stderr) if stderr is not None else None
    return Estimate(mean=mean, stderr=stderr, exposure_rate=exposure, upper=upper)


def estimate(values: Sequence[float]) -> Estimate:
    """Mean and its standard error of one ad's per-sample values under the uniform draw."""
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
    """Per-ad estimates (uniform draw) from a K×n matrix (row = sample, column = candidate ad)."""
    if not ctr_matrix:
        raise ValueError("ITCTR needs at least one sample")
    n = len(ctr_matrix[0])
    return tuple(estimate([row[i] for row in ctr_matrix]) for i in range(n))
