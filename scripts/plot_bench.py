"""The hot-path ratios of the last `make bench` (var/bench/*.json) against their targets, as one PNG for
docs/benchmarks.md, and printed as a table. A ratio whose benchmark did not run is left out.

    .venv/bin/python scripts/plot_bench.py [--out docs/benchmarks/ratios.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from service.settings import PROJECT_ROOT

BENCH = PROJECT_ROOT / "var" / "bench"


def _load(name: str) -> dict[str, Any] | None:
    path = BENCH / name
    return json.loads(path.read_text()) if path.exists() else None


def ratios() -> list[tuple[str, float, float | None]]:
    """(label, measured ratio, target or None)."""
    out: list[tuple[str, float, float | None]] = []
    results = _load("results.json")
    if results and "cache_hits" in results:
        hits = results["cache_hits"]
        out.append(("cache-hit auction ÷ trivial FastAPI", hits["auction_rps"] / hits["trivial_rps"], 0.8))
    if results and "saturation" in results:
        out.append(("service at saturation ÷ engine alone", results["saturation"]["ratio"], 0.95))
    events = _load("events.json")
    if events:
        out.append(("EventLog ÷ pipelined XADD", events["ratio_event_log_to_pipelined"], 0.85))
    cores = _load("engine_cores.json")
    if cores:
        med = cores["medians"]
        for key, label in (("decode_tokens_per_s", "decode"), ("saturation_auctions_per_s", "saturation")):
            out.append((f"engine 2 cores ÷ 1 core, {label}", med["two_cores"][key] / med["one_core"][key], None))
    repeats = _load("repeats.json")
    if repeats:
        med = repeats["medians"]
        blind, bids = med["bid_blind"]["per_s"], med["bids_in_prompt"]["per_s"]
        out.append(("bid-blind ÷ bids in prompt, 30 % repeats", blind / bids, None))
    return out


def main(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ratios()
    if not rows:
        raise SystemExit("no benchmark results in var/bench: run `make bench` first")
    for label, value, target in rows:
        print(f"{label:45} {value:6.2f}   target {'≥ ' + format(target, '.2f') if target else 'measure'}")
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(rows) + 1))
    labels = [r[0] for r in rows][::-1]
    values = [r[1] for r in rows][::-1]
    colors = ["tab:green" if t is None or v >= t else "tab:red" for _, v, t in rows][::-1]
    ax.barh(labels, values, color=colors)
    for i, (_, _, target) in enumerate(rows[::-1]):
        if target is not None:
            ax.plot([target, target], [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("ratio (black tick: target; red: below it)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"plot: {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks" / "ratios.png")
    main(parser.parse_args().out)
