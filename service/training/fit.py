"""``fit-ctr``: a logistic-regression CTR model (scikit-learn) over the service's CTR features."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from service.mechanism.ctr import FEATURE_NAMES, LogisticCTRModel


def read_rows(paths: Iterable[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        with path.open(encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


def fit_ctr(rows: list[dict[str, Any]], version: str | None = None) -> tuple[LogisticCTRModel, dict[str, Any]]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score

    if not rows:
        raise ValueError("no CTR rows to fit on")
    x = np.array([[row["features"][name] for name in FEATURE_NAMES] for row in rows], dtype=float)
    y = np.array([int(row["clicked"]) for row in rows])
    if len(set(y.tolist())) < 2:
        raise ValueError(f"need both clicked and unclicked rows (got {len(rows)} rows, {int(y.sum())} clicks)")
    regression = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    probabilities = regression.predict_proba(x)[:, 1]
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:8]
    version = version or f"ctr-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{digest}"
    model = LogisticCTRModel(
        version=version,
        intercept=float(regression.intercept_[0]),
        coefficients={name: float(c) for name, c in zip(FEATURE_NAMES, regression.coef_[0], strict=True)},
    )
    info = {
        "rows": len(rows),
        "clicks": int(y.sum()),
        "data_sha256_8": digest,
        "train_log_loss": float(log_loss(y, probabilities)),
        "train_auc": float(roc_auc_score(y, probabilities)),
        "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return model, info
