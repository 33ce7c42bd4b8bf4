"""``fit-ctr``: the CTR model learnt from logged clicks, over the service's CTR features (``FEATURE_NAMES``).

- **Held-out evaluation.** Five-fold cross-validation grouped by auction (seeded by the auction id): every row is
  scored by a model that never saw its auction, so all logged clicks count — a 20 % hold-out of a few hundred
  rows leaves a handful of clicks and an AUC that says nothing. Candidates: the propensity-weighted logistic
  regression (scikit-learn; what ships, the service prices with a logistic model), the same unweighted, a small
  MLP (64-32, as the paper's pCTR network is an MLP over embeddings) and the parent (the model that priced the
  traffic, by default the documented ``DEFAULT_CTR_MODEL``): AUC with a 95 % bootstrap interval (auctions
  resampled), log loss and expected calibration error, and a calibration plot (PNG). With n₁ clicks and n₀
  non-clicks the AUC's standard error is ≈ √(AUC(1−AUC)/min(n₀, n₁)) (Hanley–McNeil, roughly): 66 clicks
  in 197 rows resolve ±0.1 at 95 %, enough to tell a model at 0.85 from one at the issue's floor of 0.75.
- **Propensity weights.** Under non-uniform selection a logged click is a sample of the served distribution,
  not of the model's: each row is weighted by ``1/q`` of its served sample (clipped at 20, then normalised to a
  mean of 1), so the refit estimates the CTR of the proposal's samples (inverse propensity weighting).
- **Minimum evidence.** With fewer than ``MIN_POSITIVES`` (30) clicks the fit is refused (``NotEnoughClicks``)
  and the caller keeps the parent model: round 1 shipped a model refitted on 2 clicks.
- **Calibration (Platt scaling).** The shipped fit is recalibrated on its own out-of-fold predictions:
  ``logit p' = a + c·logit p`` (``platt``), which keeps the logistic form (intercept ``a + c·β₀``,
  coefficients ``c·β``) and the ranking. Why: the prior towards the parent and the propensity weights trade
  calibration for discrimination, and the service's expected payments (``b·ITCTR``), the value side of the
  selection objective and budget pacing all read the CTR's level, not only its order. Lever 8's refits
  predicted 0.43 and 0.44 mean CTR out of fold on served rows clicked at 0.39 and 0.38, and the next rounds'
  expected payments came out 20 % above the clicks. Platt is fitted unweighted: the served rows are a sample
  of the served distribution, which is what ``ITCTR = Σ_k q_k·ctr(y_k)`` forecasts. The recalibrated model
  ships when its out-of-fold log loss (Platt cross-fitted: fold k's map comes from the other folds) is lower.
- **Calibration in the large** (``calibration_in_the_large``): predicted clicks ``Σp`` against observed ``Σy``,
  ``z = (Σy − Σp)/√Σp(1−p)``: the test of the totals billing depends on, reported per candidate and, in the
  loop, for the parent on the round it priced (rows it never saw: the forward check).
- **The parent recalibrated** (``parent_recalibrated``): the parent's coefficients under a Platt map fitted on
  the new rows, two parameters instead of eight. Why: in lever 10's rounds the refits did not beat the parent
  (it was fitted on more rows than a new run has), so the parent kept pricing, 8–20 % above the new rounds'
  clicks. What ships is the lowest out-of-fold log loss of the refit, the refit recalibrated and the parent
  recalibrated; the caller's gate then compares it with the parent.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from service.mechanism.ctr import DEFAULT_CTR_MODEL, FEATURE_NAMES, CTRModel, LogisticCTRModel

MIN_POSITIVES = 30
MAX_WEIGHT = 20.0
FOLDS = 5
BOOTSTRAP = 500


CALIBRATED = "calibrated"  # a candidate: the refit recalibrated by Platt scaling
PARENT_RECALIBRATED = "parent_recalibrated"  # a candidate: the parent recalibrated on these rows (Platt)


class NotEnoughClicks(ValueError):
    pass


def read_rows(paths: Iterable[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        with path.open(encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


def _weights(rows: Sequence[dict[str, Any]]) -> list[float]:
    raw = [min(MAX_WEIGHT, 1.0 / max(float(row.get("propensity") or 1.0), 1e-9)) for row in rows]
    if all(row.get("propensity") is None for row in rows):
        return [1.0] * len(rows)
    mean = math.fsum(raw) / len(raw)
    return [w / mean for w in raw]


def _fold(row: dict[str, Any], salt: str = "") -> int:
    digest = hashlib.sha256((salt + str(row.get("auction_id", ""))).encode()).digest()
    return int.from_bytes(digest[:4], "big") % FOLDS


def calibration(y: Sequence[int], p: Sequence[float], bins: int = 10) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error (equal-width bins, weighted by count) and the per-bin points of the plot."""
    points = []
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [(yi, pi) for yi, pi in zip(y, p, strict=True) if lo <= pi < hi or (b == bins - 1 and pi == 1.0)]
        if not members:
            continue
        rate = sum(yi for yi, _ in members) / len(members)
        mean_p = math.fsum(pi for _, pi in members) / len(members)
        ece += len(members) / len(y) * abs(rate - mean_p)
        points.append({"predicted": mean_p, "observed": rate, "count": float(len(members))})
    return ece, points


def calibration_in_the_large(y: Sequence[int], p: Sequence[float]) -> dict[str, float]:
    """Predicted against observed clicks. Under correct predictions Σy has mean Σp and variance Σp(1−p)
    (independent Bernoulli clicks), so ``z`` is the normal test of "the level is right": on ≈ 300 rows at a
    click rate ≈ 0.38 its standard deviation is ≈ 8 clicks, so a 10 % over-forecast (≈ 11 clicks) is at the
    edge of detection (z ≈ 1.4) and a 20 % one is detected (z ≈ 2.8)."""
    predicted, observed = math.fsum(p), float(sum(y))
    spread = math.sqrt(math.fsum(pi * (1.0 - pi) for pi in p))
    return {
        "rows": float(len(y)),
        "predicted_clicks": predicted,
        "observed_clicks": observed,
        "ratio": predicted / observed if observed else math.inf,
        "z": (observed - predicted) / spread if spread > 0 else 0.0,
    }


def level_on(model: CTRModel, rows: Sequence[dict[str, Any]]) -> dict[str, float] | None:
    """``calibration_in_the_large`` of ``model`` on exported CTR rows (None without rows). In the IRPO loop: the
    model that priced a round, on that round's rows, which it was not fitted on (the forward check)."""
    if not rows:
        return None
    predictions = [model.predict(tuple(row["features"][name] for name in FEATURE_NAMES)) for row in rows]
    return calibration_in_the_large([int(row["clicked"]) for row in rows], predictions)


def _logit(p: Any) -> Any:
    import numpy as np

    q = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def platt(p: Any, y: Any) -> tuple[float, float]:
    """``(a, c)`` of ``logit p' = a + c·logit p``, maximum likelihood (no penalty); ``c`` is kept ≥ 0 so that a
    recalibration never reverses the model's order (c = 0: the model carries no order, a constant rate)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=np.inf, max_iter=1000).fit(_logit(p).reshape(-1, 1), np.asarray(y))
    a, c = float(fitted.intercept_[0]), float(fitted.coef_[0][0])
    if c < 0:
        rate = float(np.clip(np.mean(y), 1e-6, 1 - 1e-6))
        return math.log(rate / (1 - rate)), 0.0
    return a, c


def _apply_platt(p: Any, a: float, c: float) -> Any:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-(a + c * _logit(p))))


def _cross_fitted_platt(p: Any, y: Any, folds: Any) -> Any:
    """Platt-recalibrated predictions, each fold's by the map fitted on the other folds."""
    import numpy as np

    out = np.zeros(len(p))
    for k in range(FOLDS):
        train, test = folds != k, folds == k
        if test.any() and len(set(y[train].tolist())) == 2:
            out[test] = _apply_platt(p[test], *platt(p[train], y[train]))
    return out


def _auc_interval(y: Sequence[int], p: Sequence[float], groups: Sequence[str]) -> tuple[float, float] | None:
    """95 % bootstrap interval of the AUC, resampling auctions (rows of one auction are not independent)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    members = list(by_group.values())
    rng = np.random.default_rng(0)
    y_arr, p_arr = np.asarray(y), np.asarray(p)
    values = []
    for _ in range(BOOTSTRAP):
        idx = np.concatenate([members[j] for j in rng.integers(0, len(members), len(members))])
        if len(set(y_arr[idx].tolist())) == 2:
            values.append(float(roc_auc_score(y_arr[idx], p_arr[idx])))
    if len(values) < BOOTSTRAP // 2:
        return None
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def _scores(y: Sequence[int], p: Sequence[float], groups: Sequence[str]) -> dict[str, Any]:
    from sklearn.metrics import log_loss, roc_auc_score

    ece, points = calibration(y, p)
    both = len(set(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if both else None,
        "auc_ci95": _auc_interval(y, p, groups) if both else None,
        "log_loss": float(log_loss(y, [min(max(x, 1e-6), 1 - 1e-6) for x in p], labels=[0, 1])),
        "ece": ece,
        "mean_predicted": math.fsum(p) / len(p),
        "in_the_large": calibration_in_the_large(y, p),
        "calibration": points,
    }


def _logistic(x: Any, y: Any, weights: Any, prior: LogisticCTRModel | None = None, c: float = 1.0) -> tuple[float, Any]:
    """L2 logistic regression (C = 1) on standardised features, returned on the raw scale (intercept, coefficients).

    Why standardise: the similarities live in ≈ [−0.1, 0.5] and the user's rate in ≈ [0.05, 0.4], so an L2
    penalty on raw coefficients shrinks exactly the informative ones (a cosine's coefficient must be ≈ 5–10 to
    matter); measured on 329 logged rows, C = 1 on raw features lost 0.02 of held-out AUC against C ≥ 10.

    ``prior``: the penalty pulls the coefficients towards the prior's instead of towards 0 (the MAP estimate
    under a Gaussian prior centred on the parent model): ``min C·Σ wᵢ·logloss + ½‖β − β_parent‖²`` in
    standardised units, C chosen by ``_prior_strength``. Why: a few hundred logged rows with 70 clicks do not
    identify eight coefficients — shrunk to 0, the refit ranked clicks worse than the parent it was meant to
    improve (AUC 0.725 against 0.762 on 271 rows, docs/ctr/README.md) — while the parent already encodes what is
    known; the data then only move the coefficients they have evidence on."""
    import numpy as np

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale
    if prior is None:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=c, max_iter=2000).fit(z, y, sample_weight=weights)
        intercept_z, beta_z = float(model.intercept_[0]), model.coef_[0]
    else:
        from scipy.optimize import minimize

        w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
        centre = np.asarray([prior.coefficients.get(name, 0.0) for name in FEATURE_NAMES]) * scale
        start = np.concatenate([[prior.intercept + float(np.dot(centre / scale, mean))], centre])

        def objective(theta: Any) -> tuple[float, Any]:
            logits = theta[0] + z @ theta[1:]
            loss = c * float(np.sum(w * (np.logaddexp(0.0, logits) - y * logits)))
            residual = c * w * (1.0 / (1.0 + np.exp(-logits)) - y)
            gap = theta[1:] - centre
            grad = np.concatenate([[residual.sum()], z.T @ residual + gap])
            return loss + 0.5 * float(gap @ gap), grad

        theta = minimize(objective, start, jac=True, method="L-BFGS-B").x
        intercept_z, beta_z = float(theta[0]), theta[1:]
    coefficients = beta_z / scale
    return intercept_z - float(np.dot(coefficients, mean)), coefficients


PRIOR_STRENGTHS = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def _prior_strength(x: Any, y: Any, weights: Any, folds: Any, prior: LogisticCTRModel) -> float:
    """C of the parent-centred fit by cross-validation inside the training rows (grouped folds again, so the
    outer held-out rows never choose it): the C with the lowest weighted out-of-fold log loss. Small C keeps the
    parent, large C lets the data speak; the data decide how much they know."""
    import numpy as np

    best, best_loss = PRIOR_STRENGTHS[-1], math.inf
    for c in PRIOR_STRENGTHS:
        total = 0.0
        for k in set(folds.tolist()):
            train, test = folds != k, folds == k
            if len(set(y[train].tolist())) < 2:
                continue
            p = np.clip(_predict(_logistic(x[train], y[train], weights[train], prior, c), x[test]), 1e-6, 1 - 1e-6)
            total += float(np.sum(weights[test] * -(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p))))
        if total < best_loss:
            best, best_loss = c, total
    return best


def _predict(fitted: tuple[float, Any], x: Any) -> Any:
    import numpy as np

    intercept, coefficients = fitted
    return 1.0 / (1.0 + np.exp(-(intercept + x @ coefficients)))


def fit_ctr(
    rows: list[dict[str, Any]],
    version: str | None = None,
    parent: CTRModel = DEFAULT_CTR_MODEL,
    holdout: Sequence[dict[str, Any]] = (),
) -> tuple[LogisticCTRModel, dict[str, Any]]:
    """The logistic model fitted on all rows, and the report (cross-validated comparison, data facts).

    What ships: the propensity-weighted logistic regression shrunk towards the parent when the parent is a
    logistic model (``logistic_from_parent``), else shrunk towards 0 (``logistic``). ``holdout``: rows of other
    traffic, scored by every candidate fitted on all of ``rows`` (a second, fully separate test)."""
    import numpy as np
    from sklearn.neural_network import MLPClassifier

    if not rows:
        raise NotEnoughClicks("no CTR rows to fit on")
    y_all = [int(row["clicked"]) for row in rows]
    positives = sum(y_all)
    if positives < MIN_POSITIVES or positives == len(rows):
        raise NotEnoughClicks(f"{positives} clicks in {len(rows)} rows: a refit needs at least {MIN_POSITIVES}")

    def matrix(subset: Sequence[dict[str, Any]]) -> Any:
        return np.array([[row["features"][name] for name in FEATURE_NAMES] for row in subset], dtype=float)

    x_all, w_all = matrix(rows), np.asarray(_weights(rows))
    y_arr = np.asarray(y_all)
    folds = np.asarray([_fold(row) for row in rows])
    prior = parent if isinstance(parent, LogisticCTRModel) else None
    names = ["logistic", "logistic_unweighted", "mlp"] + (["logistic_from_parent"] if prior is not None else [])
    fit_name = "logistic_from_parent" if prior is not None else "logistic"

    inner_all = np.asarray([_fold(row, salt="inner") for row in rows])  # the folds that choose C

    def fitted_models(mask: Any) -> dict[str, Any]:
        """Each candidate fitted on the rows of ``mask``, as a function from features to CTR."""
        x, y, w = x_all[mask], y_arr[mask], w_all[mask]
        models: dict[str, Any] = {
            "logistic": _logistic(x, y, w),
            "logistic_unweighted": _logistic(x, y, None),
            # sklearn's MLP takes no sample weights: unweighted (stated in the report)
            "mlp": MLPClassifier(hidden_layer_sizes=(64, 32), alpha=1e-3, max_iter=600, random_state=0).fit(x, y),
        }
        if prior is not None:
            c = _prior_strength(x, y, w, inner_all[mask], prior)
            models["logistic_from_parent"] = _logistic(x, y, w, prior, c)
        return {
            name: (lambda v, m=m: m.predict_proba(v)[:, 1]) if name == "mlp" else (lambda v, m=m: _predict(m, v))
            for name, m in models.items()
        }

    out_of_fold: dict[str, Any] = {name: np.zeros(len(rows)) for name in names}
    for k in range(FOLDS):
        train, test = folds != k, folds == k
        if not test.any() or len(set(y_arr[train].tolist())) < 2:
            continue
        for name, predict in fitted_models(train).items():
            out_of_fold[name][test] = predict(x_all[test])
    # The fit, recalibrated (Platt), and the parent recalibrated on these rows: fold k's map is fitted on the
    # other folds' predictions, so the recalibrated predictions of fold k are out of fold too.
    base_oof = out_of_fold[fit_name]
    out_of_fold[CALIBRATED] = _cross_fitted_platt(base_oof, y_arr, folds)
    parent_all = np.asarray([parent.predict(tuple(v)) for v in x_all.tolist()])
    if prior is not None:
        out_of_fold[PARENT_RECALIBRATED] = _cross_fitted_platt(parent_all, y_arr, folds)
    out_of_fold["parent"] = parent_all
    groups = [str(row.get("auction_id", i)) for i, row in enumerate(rows)]
    candidates = {name: _scores(y_all, p.tolist(), groups) for name, p in out_of_fold.items()}
    shipped = min(
        (fit_name, CALIBRATED, PARENT_RECALIBRATED), key=lambda n: candidates.get(n, {}).get("log_loss", math.inf)
    )

    separate: dict[str, Any] = {}
    y_hold = [int(row["clicked"]) for row in holdout]
    if holdout and len(set(y_hold)) == 2:
        x_hold = matrix(holdout)
        everything = np.ones(len(rows), dtype=bool)
        predictions = {name: f(x_hold) for name, f in fitted_models(everything).items()}
        predictions[CALIBRATED] = _apply_platt(predictions[fit_name], *platt(base_oof, y_arr))
        predictions["parent"] = np.asarray([parent.predict(tuple(v)) for v in x_hold.tolist()])
        if prior is not None:
            predictions[PARENT_RECALIBRATED] = _apply_platt(predictions["parent"], *platt(parent_all, y_arr))
        hold_groups = [str(row.get("auction_id", i)) for i, row in enumerate(holdout)]
        separate = {name: _scores(y_hold, p.tolist(), hold_groups) for name, p in predictions.items()}

    strength = _prior_strength(x_all, y_arr, w_all, inner_all, prior) if prior is not None else 1.0
    intercept, coefficients = _logistic(x_all, y_arr, w_all, prior, strength)
    refit = {"intercept": intercept} | {name: float(c) for name, c in zip(FEATURE_NAMES, coefficients, strict=True)}
    recalibration: dict[str, float | str] | None = None
    if shipped == CALIBRATED:  # Platt on every row's out-of-fold prediction, applied to the fit on all rows
        a, c = platt(base_oof, y_arr)
        intercept, coefficients = a + c * intercept, c * coefficients
        recalibration = {"a": a, "c": c, "of": fit_name}
    elif shipped == PARENT_RECALIBRATED and prior is not None:  # the parent's order, the level of these rows
        a, c = platt(parent_all, y_arr)
        intercept = a + c * prior.intercept
        coefficients = c * np.asarray([prior.coefficients.get(name, 0.0) for name in FEATURE_NAMES])
        recalibration = {"a": a, "c": c, "of": "parent"}
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:8]
    version = version or f"ctr-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{digest}"
    model = LogisticCTRModel(
        version=version,
        intercept=intercept,
        coefficients={name: float(c) for name, c in zip(FEATURE_NAMES, coefficients, strict=True)},
    )
    fitted, old = candidates[shipped], candidates["parent"]
    parents_order = shipped == PARENT_RECALIBRATED and recalibration is not None and float(recalibration["c"]) > 0
    info = {
        "rows": len(rows),
        "clicks": positives,
        "evaluation": f"{FOLDS}-fold cross-validation grouped by auction: out-of-fold predictions for every row",
        "heldout_rows": len(rows),
        "heldout_clicks": positives,
        "click_rate": positives / len(rows),
        "parent": parent.version,
        "propensity_weighted": any(row.get("propensity") is not None for row in rows),
        "shipped": shipped,
        "prior_strength_c": strength if prior is not None else None,
        "recalibration": recalibration,
        "refit": refit,  # the fit on all rows before any recalibration (what ships when ``shipped`` is its name)
        # The recalibrated parent ranks as the parent does (one increasing map of its log-odds, c > 0): only its
        # log loss can beat the parent's. (Its out-of-fold AUC differs a little: each fold has its own map.)
        "beats_parent": bool(
            fitted["auc"] is not None
            and old["auc"] is not None
            and (fitted["auc"] >= old["auc"] or parents_order)
            and fitted["log_loss"] <= old["log_loss"]
        ),
        "heldout": {name: {k: v for k, v in s.items() if k != "calibration"} for name, s in candidates.items()},
        "calibration": {name: s["calibration"] for name, s in candidates.items()},
        "separate_holdout": (
            {"rows": len(holdout), "clicks": sum(y_hold)}
            | {name: {k: v for k, v in sc.items() if k != "calibration"} for name, sc in separate.items()}
            if separate
            else None
        ),
        "data_sha256_8": digest,
        "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return model, info


TABLE_HEADER = (
    "| model | AUC [95 % CI] | log loss | calibration error (ECE) | mean predicted | predicted/observed clicks |",
    "|---|---|---|---|---|---|",
)


def _report_row(name: str, s: dict[str, Any]) -> str:
    auc = f"{s['auc']:.3f}" if s["auc"] is not None else "–"
    if s.get("auc_ci95"):
        auc += f" [{s['auc_ci95'][0]:.3f}, {s['auc_ci95'][1]:.3f}]"
    large = s.get("in_the_large") or {}
    level = f"{large['ratio']:.2f} (z {large['z']:+.1f})" if large else "–"
    return f"| {name} | {auc} | {s['log_loss']:.4f} | {s['ece']:.4f} | {s['mean_predicted']:.3f} | {level} |"


def write_report(info: dict[str, Any], out_dir: Path) -> Path:
    """``report.md`` and ``calibration.png``: held-out AUC, log loss and calibration of each candidate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# CTR refit: {info['rows']} rows, {info['clicks']} clicks (click rate {info['click_rate']:.3f})",
        "",
        f"Evaluation: {info['evaluation']}. Parent: `{info['parent']}`. Ships: `{info['shipped']}` "
        f"(beats the parent on AUC and log loss: {'yes' if info['beats_parent'] else 'no'}).",
        "",
        *TABLE_HEADER,
    ]
    lines.extend(_report_row(name, s) for name, s in info["heldout"].items())
    holdout = info.get("separate_holdout")
    if holdout:
        lines += [
            "",
            f"Separate traffic ({holdout['rows']} rows, {holdout['clicks']} clicks), scored by the candidates "
            "fitted on all rows above:",
            "",
            *TABLE_HEADER,
        ]
        for name, sc in holdout.items():
            if isinstance(sc, dict):
                lines.append(_report_row(name, sc))
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", "utf-8")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for name, points in info["calibration"].items():
        ax.plot([p["predicted"] for p in points], [p["observed"] for p in points], marker="o", label=name)
    top = max([p["predicted"] for ps in info["calibration"].values() for p in ps] + [0.05])
    ax.set_xlim(0, min(1.0, top * 1.2))
    ax.set_ylim(0, min(1.0, top * 1.2))
    ax.set_xlabel("predicted CTR")
    ax.set_ylabel("observed click rate (out of fold)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "calibration.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
