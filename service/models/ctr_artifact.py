"""A fitted CTR model on disk: JSON with its version, coefficients over ``FEATURE_NAMES`` and training facts.

Written by ``python -m service.training fit-ctr``; loaded by the service when ``AUCTION_CTR_MODEL_PATH`` is set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.mechanism.ctr import FEATURE_NAMES, LogisticCTRModel


def save_ctr_model(model: LogisticCTRModel, path: Path, info: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "kind": "logistic-ctr",
        "version": model.version,
        "features": list(FEATURE_NAMES),
        "intercept": model.intercept,
        "coefficients": dict(model.coefficients),
        "info": info,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def load_ctr_model(path: Path) -> LogisticCTRModel:
    document = json.loads(path.read_text())
    if document.get("kind") != "logistic-ctr":
        raise ValueError(f"{path} is not a logistic CTR model")
    if list(document["features"]) != list(FEATURE_NAMES):
        raise ValueError(f"{path} was fitted on features {document['features']}, the service has {FEATURE_NAMES}")
    return LogisticCTRModel(
        version=str(document["version"]),
        intercept=float(document["intercept"]),
        coefficients={k: float(v) for k, v in document["coefficients"].items()},
    )
