"""``fit-ctr``: the CTR model learnt from logged clicks, over the service's CTR features (``FEATURE_NAMES``).

- **Held-out evaluation.** Rows are split by auction (80/20, seeded): the held-out clicks score every candidate
  — a logistic regression (scikit-learn, what the service serves) and a small MLP (64-32, as the paper's pCTR
  network is an MLP over embeddings) — next to the parent (the model that priced the traffic, by default the
  documented ``DEFAULT_CTR_MODEL``): AUC, log loss and expected calibration error, and a calibration plot (PNG).
  The logistic model ships (the service prices with a logistic model); the MLP's held-out figures say what a
  richer model would buy.
- **Propensity weights.** Under non-uniform selection a logged click is a sample of the served distribution,
  not of the model's: each row is weighted by ``1/q`` of its served sample (clipped at 20, then normalised to a
  mean of 1), so the refit estimates the CTR of the proposal's samples (inverse propensity weighting).
- **Minimum evidence.** With fewer than ``MIN_POSITIVES`` (30) clicks the fit is refused (``NotEnoughClicks``)
  and the caller keeps the parent model: round 1 shipped a model refitted on 2 clicks.
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
HOLDOUT = 0.2


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


def _holdout(row: dict[str, Any]) -> bool:
    digest = hashlib.sha256(str(row.get("auction_id", "")).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < HOLDOUT


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


def _scores(y: Sequence[int], p: Sequence[float]) -> dict[str, Any]:
    from sklearn.metrics import log_loss, roc_auc_score

    ece, points = calibration(y, p)
    both = len(set(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if both else None,
        "log_loss": float(log_loss(y, [min(max(x, 1e-6), 1 - 1e-6) for x in p], labels=[0, 1])),
        "ece": ece,
        "calibration": points,
    }


def fit_ctr(
    rows: list[dict[str, Any]], version: str | None = None, parent: CTRModel = DEFAULT_CTR_MODEL
) -> tuple[LogisticCTRModel, dict[str, Any]]:
    """The logistic model fitted on all rows, and the report (held-out comparison, data facts)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if not rows:
        raise NotEnoughClicks("no CTR rows to fit on")
    y_all = [int(row["clicked"]) for row in rows]
    positives = sum(y_all)
    if positives < MIN_POSITIVES or positives == len(rows):
        raise NotEnoughClicks(f"{positives} clicks in {len(rows)} rows: a refit needs at least {MIN_POSITIVES}")

    def matrix(subset: Sequence[dict[str, Any]]) -> Any:
        return np.array([[row["features"][name] for name in FEATURE_NAMES] for row in subset], dtype=float)

    train = [row for row in rows if not _holdout(row)]
    test = [row for row in rows if _holdout(row)]
    candidates: dict[str, dict[str, Any]] = {}
    if test and len({int(r["clicked"]) for r in train}) == 2:
        x_train, y_train, w_train = matrix(train), [int(r["clicked"]) for r in train], _weights(train)
        x_test, y_test = matrix(test), [int(r["clicked"]) for r in test]
        logistic = LogisticRegression(C=1.0, max_iter=2000).fit(x_train, y_train, sample_weight=w_train)
        candidates["logistic"] = _scores(y_test, logistic.predict_proba(x_test)[:, 1].tolist())
        mlp = MLPClassifier(hidden_layer_sizes=(64, 32), alpha=1e-3, max_iter=600, random_state=0)
        mlp.fit(x_train, y_train)  # sklearn's MLP takes no sample weights: unweighted (stated in the report)
        candidates["mlp"] = _scores(y_test, mlp.predict_proba(x_test)[:, 1].tolist())
        candidates["parent"] = _scores(y_test, [parent.predict(tuple(v)) for v in x_test.tolist()])

    regression = LogisticRegression(C=1.0, max_iter=2000).fit(matrix(rows), y_all, sample_weight=_weights(rows))
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:8]
    version = version or f"ctr-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{digest}"
    model = LogisticCTRModel(
        version=version,
        intercept=float(regression.intercept_[0]),
        coefficients={name: float(c) for name, c in zip(FEATURE_NAMES, regression.coef_[0], strict=True)},
    )
    info = {
        "rows": len(rows),
        "clicks": positives,
        "heldout_rows": len(test),
        "heldout_clicks": sum(int(r["clicked"]) for r in test),
        "parent": parent.version,
        "propensity_weighted": any(row.get("propensity") is not None for row in rows),
        "heldout": {name: {k: v for k, v in s.items() if k != "calibration"} for name, s in candidates.items()},
        "calibration": {name: s["calibration"] for name, s in candidates.items()},
        "data_sha256_8": digest,
        "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return model, info


def write_report(info: dict[str, Any], out_dir: Path) -> Path:
    """``report.md`` and ``calibration.png``: held-out AUC, log loss and calibration of each candidate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# CTR refit: {info['rows']} rows, {info['clicks']} clicks (held out: {info['heldout_rows']} rows, "
        f"{info['heldout_clicks']} clicks)",
        "",
        "| model | held-out AUC | log loss | calibration error (ECE) |",
        "|---|---|---|---|",
    ]
    for name, s in info["heldout"].items():
        auc = f"{s['auc']:.3f}" if s["auc"] is not None else "–"
        lines.append(f"| {name} | {auc} | {s['log_loss']:.4f} | {s['ece']:.4f} |")
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", "utf-8")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for name, points in info["calibration"].items():
        ax.plot([p["predicted"] for p in points], [p["observed"] for p in points], marker="o", label=name)
    top = max([p["predicted"] for ps in info["calibration"].values() for p in ps] + [0.05])
    ax.set_xlim(0, min(1.0, top * 1.2))
    ax.set_ylim(0, min(1.0, top * 1.2))
    ax.set_xlabel("predicted CTR")
    ax.set_ylabel("observed click rate (held out)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "calibration.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
