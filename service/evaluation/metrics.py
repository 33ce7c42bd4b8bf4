"""How good is a model version as an auction? Pure statistics over served auctions (no I/O).

The yardstick is fixed across versions: the click simulator (``click_simulator``) plays the user, so a sample's
value is ``Σ_i b_i·P_sim(click i | y)`` whatever CTR model the version itself prices with. Per auction (K samples
``y_k`` of one context):

- ``itctr_i = mean_k P_sim(click i | y_k)`` (its standard error over the K samples);
- revenue = ``Σ_i b_i·itctr_i`` (first price: each click pays the bid);
- reward = ``mean_k [Σ_i b_i·P_sim(click i | y_k) − λ·s_resp(y_k)]`` (the objective without the KL term);
- per sample: a *valid ad* (≥ 1 well-formed marker of a candidate, no format error), a *relevant* ad (one of
  the query's category), the *best* ad (the relevant ad with the highest bid), a format error, the ad count,
  and the *answer relevance*: MiniLM cosine of the answer with its markers removed to the question (is the text
  around the ads still an answer?);
- the *oracle*: the sample with the highest reward under the simulator's own click probabilities, served
  (the best any selection rule could do with these K samples; the upper row of the paper's Table 2).

Revenue and reward per query come with a t-based 95 % CI over auctions (contexts are independent draws).

The served answer is drawn from the response's ``probabilities`` q (uniform for the paper's rule), so the
*served* measures weight sample k by ``q_k``: served ITCTR ``Σ_k q_k·P_sim(click i | y_k)``, served revenue, the
expected share of broken served answers. The raw-sample shares (valid, relevant, format error) describe the LLM.

Bid response is measured by ``pooled_slope``: a regression of the swept ad's exposure (or ITCTR) on its bid with
one intercept per sweep (fixed effects), the slope's standard error clustered by sweep (points of one sweep share
their samples or their seed: common random numbers), reported as the change from bid 1 to bid 100 with a 95 % CI
and z, in both directions. Sized for the question "does the allocation follow bids": with 16 sweeps × 5 bids ×
K = 8 the standard error of the 1→100 change is ≈0.06 for exposure, so a +0.2 rise is detected at z ≈ 3.
(Round 1's "monotone within two standard errors" per sweep passed a flat or falling curve as often as a rising
one at that size; ``Sweep.monotone`` is kept only as a descriptive share.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from scipy import stats as scipy_stats

from service.mechanism import itctr
from service.mechanism.exposure import MARKER_RE, parse
from service.mechanism.objective import ObjectiveWeights, response_penalty
from service.mechanism.types import Ad, AdvertiserKind
from service.simulation.contexts import CatalogContext
from service.simulation.users import ClickModel, click_expectations, click_probabilities, encoder

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
    served_format_errors: float = 0.0  # Σ_k q_k·1(sample k has a format error): P(the served answer is broken)
    served_relevant: float = 0.0  # P(the served answer shows a relevant ad)
    exposure: dict[str, float] | None = None  # X_i as the service reported it (its served distribution)
    answer_relevance: float = 0.0  # summed over samples: cos(answer without markers, query)
    oracle_revenue: float = 0.0  # Σ_i b_i·P_sim(click i | y_k*), k* = argmax_k reward_k
    oracle_reward: float = 0.0  # reward_k*
    fitting: bool = True  # the question has a relevant candidate (an ad of its category); off-topic ones do not
    relevant_shown: int = 0  # relevant ads shown, summed over samples (of ``ads_shown``)


def answer_relevance(query: str, texts: Sequence[str]) -> list[float]:
    """MiniLM cosine of each answer, markers removed, with the question (the encoder the simulated users read
    with); an answer that is only a marker scores about 0."""
    stripped = [" ".join(MARKER_RE.sub(" ", t).split()) for t in texts]
    vectors = encoder().encode([query, *stripped])
    return [float(vectors[0] @ v) if text else 0.0 for v, text in zip(vectors[1:], stripped, strict=True)]


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
    # A sample cut at max_tokens inside a marker ("… @Title@[Ad-70") is a format error, as the service counts it
    # (``exposure.parse(truncated=True)``; never shown). Without the finish reasons a half marker went uncounted:
    # every format-error share measured before 2026-12-06 13:50 misses them (docs/irpo.md, lever 10).
    reasons: Sequence[str | None] = response.get("sample_finish_reasons") or [None] * len(texts)
    q: Sequence[float] = response.get("probabilities") or [1.0 / len(texts)] * len(texts)
    relevant = item.relevant_ids
    best_bid = max((a.bid for a in context.ads if a.id in relevant), default=None)
    best_ids = {a.id for a in context.ads if a.id in relevant and a.bid == best_bid}
    per_sample_clicks: list[dict[str, float]] = []
    valid = relevant_n = best_n = errors_n = shown = relevant_shown = 0
    served_errors = served_relevant = 0.0
    rewards: list[float] = []
    values: list[float] = []
    bids = {a.id: a.bid for a in context.ads}
    for text, reason in zip(texts, reasons, strict=True):
        exposure = parse(text, context.ads, truncated=reason == "length")
        exposed = set(exposure.exposed)
        clicks = click_expectations(context, text, click_model, click_seed)
        per_sample_clicks.append(clicks)
        valid += bool(exposed) and not exposure.errors
        relevant_n += bool(exposed & relevant)
        best_n += bool(exposed & best_ids)
        errors_n += bool(exposure.errors)
        shown += len(exposed)
        relevant_shown += len(exposed & relevant)
        served_errors += q[len(rewards)] * bool(exposure.errors)
        served_relevant += q[len(rewards)] * bool(exposed & relevant)
        value = math.fsum(bids[ad_id] * p for ad_id, p in clicks.items())
        values.append(value)
        rewards.append(value - weights.lam * response_penalty(exposure.n_ads, len(exposure.errors), weights))
    estimates = {
        ad.id: itctr.weighted(q, [clicks.get(ad.id, 0.0) for clicks in per_sample_clicks]) for ad in context.ads
    }
    violations = sum(ir_violation(context.ads, result) for result in response["ads"])
    oracle = max(range(len(texts)), key=lambda k: rewards[k])
    return AuctionStats(
        samples=len(texts),
        valid=valid,
        relevant=relevant_n,
        best=best_n,
        format_errors=errors_n,
        ads_shown=shown,
        itctr=estimates,
        revenue=math.fsum(bids[i] * e.mean for i, e in estimates.items()),
        reward=math.fsum(qk * r for qk, r in zip(q, rewards, strict=True)),
        billed_revenue=math.fsum(r["expected_payment"] for r in response["ads"]),
        ir_violations=violations,
        served_format_errors=served_errors,
        served_relevant=served_relevant,
        exposure={r["id"]: float(r.get("exposure_rate", 0.0)) for r in response["ads"]},
        answer_relevance=math.fsum(answer_relevance(context.query, texts)),
        oracle_revenue=values[oracle],
        oracle_reward=rewards[oracle],
        fitting=bool(relevant),
        relevant_shown=relevant_shown,
    )


@dataclass(frozen=True, slots=True)
class Ceiling:
    """What any answer to one context can earn from its user, ``Σ_i b_i·P_sim(click i | y)``: the true maximum
    over all answers lies in ``[written, bound]``."""

    written: float  # the best of answers we write: one ad, or two in either order, each in a sentence on the question
    bound: float  # no answer earns more


def revenue_ceiling(item: CatalogContext, click_model: ClickModel | None = None, click_seed: int = 0) -> Ceiling:
    """How far a model could go on this context — which revenue targets are reachable at all.

    *Bound*: each ad's click probability is at most its value with the answer's terms at their best — the marker
    at the start (position 0) in a sentence about the question (native) — since only those terms depend on the
    answer; competition among ads of one category only lowers it, and ``flood_threshold`` or more ads earn
    nothing; so no answer earns more than the sum of the ``flood_threshold − 1`` largest ``b_i·p_i^max``.
    *Written*: the best of the answers "@A@[a] is the pick for <question>." and "@A@[a] for <question>, and
    @B@[b] for <question>." over every ad and ordered pair (real answers, so a lower bound of the maximum).
    """
    model = click_model or ClickModel()
    context = item.context
    bids = {ad.id: ad.bid for ad in context.ads}
    best = dataclasses.replace(  # the position and native terms fixed at their best, whatever their signs
        model,
        intercept=model.intercept + max(model.position_weight, 0.0),
        position_weight=0.0,
        native_threshold=-math.inf if model.native_weight >= 0 else math.inf,
    )
    every_ad = " ".join(f"@{ad.title}@[{ad.id}]" for ad in context.ads) + " all fit."
    p_max = click_probabilities(context, every_ad, best, click_seed)
    values = sorted((bids[i] * p for i, p in p_max.items()), reverse=True)
    bound = math.fsum(values[: max(model.flood_threshold - 1, 0)])

    def value(answer: str) -> float:
        return math.fsum(bids[i] * p for i, p in click_expectations(context, answer, model, click_seed).items())

    topic = context.query.rstrip("?.! ")
    answers = [f"@{a.title}@[{a.id}] is the pick for {topic}." for a in context.ads]
    if model.flood_threshold > 2:
        answers += [
            f"@{a.title}@[{a.id}] for {topic}, and @{b.title}@[{b.id}] for {topic}."
            for a in context.ads
            for b in context.ads
            if a.id != b.id
        ]
    return Ceiling(written=max((value(a) for a in answers), default=0.0), bound=bound)


def ir_violation(ads: Sequence[Ad], result: Mapping[str, Any]) -> bool:
    """Does the service charge an ad more than the value its bid implies? Per click: price ≤ bid (≤ the implied
    value τ·bid of a VM bidding v/τ, τ ≥ 1); in expectation: payment ≤ bid·itctr; a VM's ROI constraint
    ``implied value·itctr ≥ τ·payment``. Any of these broken is a violation."""
    ad = next(a for a in ads if a.id == result["id"])
    implied = ad.bid * ad.target_roi if ad.advertiser_kind is AdvertiserKind.VM else ad.bid
    over_bid = result["price_per_click"] > ad.bid + IR_TOLERANCE
    over_value = result["expected_payment"] > ad.bid * result["itctr"] + IR_TOLERANCE
    roi = ad.target_roi if ad.advertiser_kind is AdvertiserKind.VM else 1.0
    under_roi = implied * result["itctr"] < roi * result["expected_payment"] - IR_TOLERANCE
    return bool(over_bid or over_value or under_roi)


def mean_ci(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean and t-based 95 % CI (None with fewer than two values)."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None, None
    half = float(scipy_stats.t.ppf(0.975, n - 1)) * math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1) / n)
    return mean, mean - half, mean + half


def summarize(stats: Sequence[AuctionStats]) -> dict[str, float | None]:
    """Per-query and per-sample averages over auctions."""
    n = len(stats)
    samples = sum(s.samples for s in stats)
    if n == 0 or samples == 0:
        raise ValueError("nothing to summarize")
    out: dict[str, float | None] = {"auctions": n, "samples": samples}
    for name in ("revenue", "reward", "oracle_revenue", "oracle_reward"):
        mean, low, high = mean_ci([getattr(s, name) for s in stats])
        out |= {f"{name}_per_query": mean, f"{name}_ci_low": low, f"{name}_ci_high": high}
    # The service's expected payments (its CTR model) minus what the simulated users' clicks are worth, per
    # auction: how far the CTR model that priced this traffic forecasts above (> 0) or below the clicks.
    mean, low, high = mean_ci([s.billed_revenue - s.revenue for s in stats])
    out |= {"overbilling_per_query": mean, "overbilling_ci_low": low, "overbilling_ci_high": high}
    return out | {
        "billed_revenue_per_query": math.fsum(s.billed_revenue for s in stats) / n,
        "valid_ad_share": sum(s.valid for s in stats) / samples,
        "relevant_ad_share": sum(s.relevant for s in stats) / samples,
        "best_ad_share": sum(s.best for s in stats) / samples,
        "format_error_share": sum(s.format_errors for s in stats) / samples,
        "ads_per_answer": sum(s.ads_shown for s in stats) / samples,
        "served_format_error_share": math.fsum(s.served_format_errors for s in stats) / n,
        "served_relevant_share": math.fsum(s.served_relevant for s in stats) / n,
        "ir_violations": sum(s.ir_violations for s in stats),
        "answer_relevance": math.fsum(s.answer_relevance for s in stats) / samples,
        # the targets split by question: a valid ad where one fits, and where none does (off-topic);
        # and the share of shown ads that are relevant
        "valid_ad_share_fitting": _share(stats, fitting=True),
        "valid_ad_share_unfitting": _share(stats, fitting=False),
        "relevant_exposure_share": (
            sum(s.relevant_shown for s in stats) / shown if (shown := sum(s.ads_shown for s in stats)) else None
        ),
    }


def summarize_ceilings(ceilings: Sequence[Ceiling]) -> dict[str, float | None]:
    """Per-query means and t intervals of the ceilings of a set of contexts (``revenue_ceiling``)."""
    out: dict[str, float | None] = {}
    for name in ("written", "bound"):
        mean, low, high = mean_ci([getattr(c, name) for c in ceilings])
        out |= {f"ceiling_{name}_per_query": mean, f"ceiling_{name}_ci_low": low, f"ceiling_{name}_ci_high": high}
    return out


def _share(stats: Sequence[AuctionStats], *, fitting: bool) -> float | None:
    """Valid-ad share of the samples of the auctions whose question has (or has not) a fitting candidate."""
    part = [s for s in stats if s.fitting is fitting]
    samples = sum(s.samples for s in part)
    return sum(s.valid for s in part) / samples if samples else None


PAIRED_MEASURES = ("revenue", "reward", "answer_relevance", "format_error_share", "valid_ad_share")


class PairedDifference(TypedDict):
    """One measure of ``paired_differences``: the two means, B − A, and its t interval (None below two auctions)."""

    a: float
    b: float
    difference: float
    ci_low: float | None
    ci_high: float | None


def auction_row(item: CatalogContext, stats: AuctionStats) -> dict[str, Any]:
    """One auction's figures as a flat row (``auctions.jsonl`` of a collection), with the context's identity, so
    two versions served on the same contexts can be compared auction by auction (``paired_differences``)."""
    return {
        "query_id": item.query_id,
        "bids": {ad.id: ad.bid for ad in item.context.ads},
        "revenue": stats.revenue,
        "reward": stats.reward,
        "answer_relevance": stats.answer_relevance / stats.samples,
        "format_error_share": stats.format_errors / stats.samples,
        "valid_ad_share": stats.valid / stats.samples,
    }


def paired_differences(
    rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]]
) -> dict[str, PairedDifference]:
    """B − A per measure over the same auctions: mean difference with its t interval over auctions. Pairing
    removes the context-to-context variance that dominates an unpaired comparison of two collections (a
    question without a fitting ad is worth 0 to every version), so the interval is the one a shipping rule
    should read. The two collections must hold the same contexts in the same order (same seed and round)."""
    if len(rows_a) != len(rows_b) or not rows_a:
        raise ValueError(f"paired collections differ in size ({len(rows_a)} against {len(rows_b)})")
    for a, b in zip(rows_a, rows_b, strict=True):
        if (a["query_id"], a["bids"]) != (b["query_id"], b["bids"]):
            raise ValueError(f"not the same contexts: {a['query_id']} against {b['query_id']}")
    out: dict[str, PairedDifference] = {}
    for name in PAIRED_MEASURES:
        mean, low, high = mean_ci([float(b[name]) - float(a[name]) for a, b in zip(rows_a, rows_b, strict=True)])
        out[name] = {
            "a": _mean(rows_a, name),
            "b": _mean(rows_b, name),
            "difference": mean,
            "ci_low": low,
            "ci_high": high,
        }
    return out


def _mean(rows: Sequence[Mapping[str, Any]], name: str) -> float:
    return math.fsum(float(r[name]) for r in rows) / len(rows)


@dataclass(frozen=True, slots=True)
class Sweep:
    bids: tuple[float, ...]
    itctr: tuple[float, ...]
    stderr: tuple[float, ...]
    exposure: tuple[float, ...] | None = None  # the swept ad's served exposure X_i at each bid

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


def sweep_of(
    bids: Sequence[float], estimates: Sequence[itctr.Estimate], exposure: Sequence[float] | None = None
) -> Sweep:
    return Sweep(
        bids=tuple(bids),
        itctr=tuple(e.mean for e in estimates),
        stderr=tuple(e.stderr or 0.0 for e in estimates),
        exposure=tuple(exposure) if exposure is not None else None,
    )


@dataclass(frozen=True, slots=True)
class SlopeTest:
    """The pooled change of a measure from bid 1 to bid 100 (fixed-effects slope × 99), clustered by sweep."""

    delta: float
    stderr: float | None
    ci_low: float | None
    ci_high: float | None
    z: float | None
    sweeps: int

    @property
    def direction(self) -> str:
        if self.ci_low is None or self.ci_high is None:
            return "unknown"
        return "rising" if self.ci_low > 0 else "falling" if self.ci_high < 0 else "flat (CI covers 0)"


def _t95(df: int) -> float:
    return float(scipy_stats.t.ppf(0.975, df))


def pooled_slope(curves: Sequence[Sequence[float]], bids: Sequence[float], span: float = 99.0) -> SlopeTest:
    """``curves[s][j]``: the measure of sweep s at ``bids[j]``. Within each sweep the slope is the least-squares
    slope on the bid (the sweep's own intercept is its fixed effect); the pooled slope is their mean, and its
    standard error is the spread of the per-sweep slopes over √S (sweeps are independent; points within one are
    not, which this respects). Returned per ``span`` of bid (99: from 1 to 100), with a t-based 95 % CI."""
    mean_bid = math.fsum(bids) / len(bids)
    sxx = math.fsum((b - mean_bid) ** 2 for b in bids)
    if not curves or sxx == 0:
        raise ValueError("a slope needs sweeps over at least two distinct bids")
    slopes = []
    for curve in curves:
        mean_y = math.fsum(curve) / len(curve)
        slopes.append(math.fsum((b - mean_bid) * (y - mean_y) for b, y in zip(bids, curve, strict=True)) / sxx)
    s = len(slopes)
    delta = span * math.fsum(slopes) / s
    if s < 2:
        return SlopeTest(delta, None, None, None, None, s)
    mean_slope = math.fsum(slopes) / s
    se = span * math.sqrt(math.fsum((x - mean_slope) ** 2 for x in slopes) / (s - 1) / s)
    half = _t95(s - 1) * se
    z = delta / se if se > 0 else (math.inf if delta > 0 else -math.inf if delta < 0 else 0.0)
    return SlopeTest(delta, se, delta - half, delta + half, z, s)


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
