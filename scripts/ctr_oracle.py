"""The ceiling for a CTR model on logged clicks: the AUC of the simulated users' own click probabilities
(``service.simulation.users.click_expectations``, what the simulator drew the clicks from) on the exported rows.
No model of the features can rank the clicks better than this, up to noise.

    .venv/bin/python scripts/ctr_oracle.py IMPRESSIONS.jsonl [...] --rows CTR.jsonl [...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sklearn.metrics import roc_auc_score

from service.simulation.users import click_expectations
from service.training.dataset import context_of


def main(impression_files: list[Path], row_files: list[Path]) -> None:
    impressions: dict[str, dict[str, Any]] = {}
    for path in impression_files:
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                imp = json.loads(line)
                impressions[imp["auction_id"]] = imp
    y, p = [], []
    for path in row_files:
        for line in path.read_text("utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            imp = impressions[row["auction_id"]]
            served = imp["samples"][imp["served_index"]]["text"]
            y.append(int(row["clicked"]))
            p.append(click_expectations(context_of(imp), served).get(row["ad_id"], 0.0))
    print(json.dumps({"rows": len(y), "clicks": sum(y), "oracle_auc": roc_auc_score(y, p), "mean_p": sum(p) / len(p)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("impressions", nargs="+", type=Path)
    parser.add_argument("--rows", nargs="+", type=Path, required=True)
    args = parser.parse_args()
    main(args.impressions, args.rows)
