"""Which of the K samples is served: the optimum of the paper's objective over the samples, or the paper's
uniform draw.

Given K samples ``y_k`` of the deployed model π_θ with objectives (Eq. 2 without the KL term)
``O_k(b) = Σ_i b_i·m_ik − λ·s_k``, where ``m_ik = ctr_ik·e_ik`` (``e_ik``: ad i exposed in sample k), the
distribution over the samples that maximises ``E_q[O] − T·KL(q ‖ uniform)`` — the sample-based version of
``max_π E_π[O] − T·KL(π ‖ π_θ)``, a trust region around the *deployed* model (not the pretrained one unless
the proposal is that model) — is the softmax

    q_k = exp(O_k/T) / Z,    Z = Σ_k exp(O_k/T).

For fixed samples it is monotone in each bid: with ``Y_i = Σ_k q_k·m_ik`` (the served ITCTR) and
``X_i = Σ_k q_k·e_ik`` (the served exposure), ``∂Y_i/∂b_i = Var_q(m_i)/T ≥ 0`` and
``∂X_i/∂b_i = (E_q[e_i·m_i] − X_i·Y_i)/T = Y_i·(1 − X_i)/T ≥ 0`` (``m_i = 0`` wherever ``e_i = 0``), and
``Y_i = T·∂ log Z/∂b_i``, which gives the Myerson payment its closed form (``payments.myerson``).
T → ∞ is the uniform draw (the paper: serve a sample of π_θ); T → 0 is best-of-K.

Pure and numerically stable (log-sum-exp), so a logged auction can be replayed: the draw is seeded by the
auction id.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Selection(StrEnum):
    UNIFORM = "uniform"  # the paper: the served answer is a sample of the LLM (T = ∞)
    OPTIMAL = "optimal"  # the objective's optimum over the K samples: softmax at temperature T


@dataclass(frozen=True, slots=True)
class SelectionRule:
    selection: Selection = Selection.OPTIMAL
    temperature: float = 0.5  # T, in the units of the objective

    def __post_init__(self) -> None:
        if not self.temperature > 0 or math.isinf(self.temperature):
            raise ValueError("the selection temperature must be positive and finite (uniform is T = ∞)")

    @property
    def effective_temperature(self) -> float:
        return math.inf if self.selection is Selection.UNIFORM else self.temperature


def log_partition(objectives: Sequence[float], temperature: float) -> float:
    """``log Σ_k exp(O_k/T)``, stable for any T > 0."""
    top = max(objectives)
    return top / temperature + math.log(math.fsum(math.exp((o - top) / temperature) for o in objectives))


def probabilities(objectives: Sequence[float], temperature: float) -> tuple[float, ...]:
    """``q_k``; uniform when T = ∞."""
    k = len(objectives)
    if k == 0:
        raise ValueError("selection needs at least one sample")
    if math.isinf(temperature):
        return (1.0 / k,) * k
    top = max(objectives)
    weights = [math.exp((o - top) / temperature) for o in objectives]
    total = math.fsum(weights)
    return tuple(w / total for w in weights)


def _unit(auction_id: str) -> int:
    return int.from_bytes(hashlib.sha256(auction_id.encode("utf-8")).digest()[:8], "big")


def draw_uniform(auction_id: str, k: int) -> int:
    """A uniform draw from 0..k-1 seeded by the auction id (bias ≤ k/2^64: negligible)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    return _unit(auction_id) % k


def draw(auction_id: str, q: Sequence[float]) -> int:
    """Sample k with probability ``q_k``, reproducibly from the auction id (inverse CDF of one uniform)."""
    if all(abs(p - q[0]) < 1e-15 for p in q):
        return draw_uniform(auction_id, len(q))  # exactly the paper's draw when q is uniform
    u = _unit(auction_id) / 2.0**64
    cumulative = 0.0
    for k, p in enumerate(q):
        cumulative += p
        if u < cumulative:
            return k
    return max(range(len(q)), key=lambda j: q[j])  # u in the last ulp of rounding: the likeliest sample


def served_itctr(q: Sequence[float], column: Sequence[float]) -> float:
    """``Y_i = Σ_k q_k·m_ik`` (with ``column = m_i``), or ``X_i`` with ``column = e_i``."""
    return math.fsum(p * m for p, m in zip(q, column, strict=True))


def weighted_stderr(q: Sequence[float], column: Sequence[float]) -> float | None:
    """Standard error of ``Σ_k q_k·v_k`` as an estimate from K samples of the proposal: the delta method for a
    self-normalised weighted mean, ``√(K/(K−1) · Σ_k q_k²·(v_k − Ŷ)²)``; with uniform q this is the usual
    standard error of the mean. None when K = 1."""
    k = len(q)
    if k < 2:
        return None
    mean = served_itctr(q, column)
    return math.sqrt(k / (k - 1) * math.fsum(p * p * (v - mean) ** 2 for p, v in zip(q, column, strict=True)))


def curve(
    objectives: Sequence[float], column: Sequence[float], bid: float, grid: Sequence[float], temperature: float
) -> tuple[float, ...]:
    """``Y_i`` at each bid of ``grid``, the other bids fixed, from the same samples: ``O_k`` is linear in ``b_i``
    (``O_k(z) = O_k(b_i) + (z − b_i)·m_ik``), so no new generation is needed."""
    out = []
    for z in grid:
        shifted = [o + (z - bid) * m for o, m in zip(objectives, column, strict=True)]
        out.append(served_itctr(probabilities(shifted, temperature), column))
    return tuple(out)
