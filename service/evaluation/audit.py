"""Mechanism audit: on held-out contexts, through the real service, each *arm* — a model version served under a
mechanism mode — sweeps one relevant ad's bid over a grid (K samples per point, the same seed at every bid of a
sweep: common random numbers), measures revenue, reward and ad quality on further held-out contexts, and checks
individual rationality on every auction (one relevant ad in every audit context is a value maximiser with target
ROI 2, so the VM convention is checked too). Writes one JSON report per arm, a summary and PNG plots. An offline
job: it starts the service itself, once per version.

Modes (``MODES``): ``paper`` — bids in the prompt, uniform draw, first price (the paper exactly); ``optimal`` —
bids in the prompt, the objective's optimum over the K (softmax at T), first price (the default deployment);
``blind`` — bid-blind prompt, optimal selection, Myerson payments (the mode with guarantees). ``base:optimal`` is
the MOSAIC-like arm: selection over samples of the untrained model. Every mode decodes under the candidates'
marker grammar (the deployment's default) but ``raw`` — ``paper`` on the model's unconstrained samples, the
arm that measures how well the model itself writes the format.

Statistics (fixed click-simulator yardstick, the served distribution's weights, the pooled bid slope with its
CI) are defined in ``service.evaluation.metrics``.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from service.devtools.service_process import running_service
from service.evaluation import metrics as evaluation
from service.mechanism.types import AdvertiserKind
from service.simulation.contexts import CatalogContext, draw_contexts, sweep_contexts, with_advertiser, with_bid
from service.simulation.traffic import serve_auctions
from service.simulation.users import ClickModel

_PAPER = {"selection": "uniform", "payment_rule": "first_price", "bids_in_prompt": True, "constrain_markers": True}
MODES: dict[str, dict[str, Any]] = {
    "paper": _PAPER,
    "optimal": {**_PAPER, "selection": "optimal"},
    "blind": {**_PAPER, "selection": "optimal", "payment_rule": "myerson", "bids_in_prompt": False},
    "raw": {**_PAPER, "constrain_markers": False},
}


def parse_arm(spec: str) -> tuple[str, str]:
    """``VERSION[:MODE]`` → (version, mode); the mode defaults to ``paper`` (the LLM's own allocation)."""
    version, _, mode = spec.partition(":")
    mode = mode or "paper"
    if mode not in MODES:
        raise ValueError(f"unknown audit mode {mode!r} in {spec!r} (known: {', '.join(MODES)})")
    return version, mode


@dataclass(frozen=True, slots=True)
class AuditConfig:
    sweep_contexts: int = 16  # sized to detect +0.2 exposure from bid 1 to 100 (service.evaluation.metrics)
    bid_grid: tuple[float, ...] = (1.0, 25.0, 50.0, 75.0, 100.0)
    sweep_samples: int = 8  # K per grid point
    metric_contexts: int = 24
    metric_samples: int = 8
    max_tokens: int = 96
    seed: int = 1_000_003  # contexts differ from every training round's
    click_seed: int = 99
    concurrency: int = 8


@dataclass
class AuditReport:
    version: str
    model: str
    ctr_model: str
    config: dict[str, Any]
    metrics: dict[str, float | None]
    sweep_summary: dict[str, float | None]
    ir_violations: int
    mode: str = "paper"
    slopes: dict[str, dict[str, Any]] = field(default_factory=dict)  # exposure / itctr: SlopeTest + direction
    sweeps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def arm(self) -> str:
        return f"{self.version}:{self.mode}"


def _with_vm(item: CatalogContext, ad_id: str) -> CatalogContext:
    return with_advertiser(item, ad_id, AdvertiserKind.VM, 2.0)


def heldout_items(config: AuditConfig) -> list[CatalogContext]:
    """The held-out contexts of revenue and reward (one relevant ad a value maximiser where one fits)."""
    items = draw_contexts(config.seed + 1, config.metric_contexts, "heldout")
    return [_with_vm(item, min(item.relevant_ids)) if item.relevant_ids else item for item in items]


@functools.cache
def ceilings(config: AuditConfig) -> dict[str, float | None]:
    """The revenue any model could earn on the held-out contexts (``metrics.revenue_ceiling``): the scale on
    which the arms' revenue/query is read. The same for every arm of one config, so computed once."""
    return evaluation.summarize_ceilings(
        [evaluation.revenue_ceiling(item, ClickModel(), config.click_seed) for item in heldout_items(config)]
    )


async def audit_url(url: str, version: str, config: AuditConfig, mode: str = "paper") -> AuditReport:
    """Audit the model version the service at ``url`` serves, under mechanism ``mode``."""
    click_model = ClickModel()
    mechanism = MODES[mode]
    sweeps = sweep_contexts(config.seed, config.sweep_contexts)
    # The fixed relevant ad (not the swept one) is a value maximiser bidding v/τ with τ = 2.
    fixed = [next(a.id for a in item.context.ads if a.id in item.relevant_ids and a.id != ad) for item, ad in sweeps]
    points = [(i, bid) for i in range(len(sweeps)) for bid in config.bid_grid]
    sweep_items = [_with_vm(with_bid(sweeps[i][0], sweeps[i][1], bid), fixed[i]) for i, bid in points]
    swept = []
    for start in range(0, len(points), len(config.bid_grid)):  # one seed per sweep: common random numbers
        sweep_index = start // len(config.bid_grid)
        options = {"samples": config.sweep_samples, "max_tokens": config.max_tokens, "return_samples": True,
                   "seed": config.seed % 10_000 + sweep_index, **mechanism}  # fmt: skip
        swept += await serve_auctions(
            url, sweep_items[start : start + len(config.bid_grid)], options, concurrency=config.concurrency,
            desc=f"audit {version}:{mode}: sweep {sweep_index + 1}/{len(sweeps)}",
        )  # fmt: skip
    metric_items = heldout_items(config)
    options = {"samples": config.metric_samples, "max_tokens": config.max_tokens, "return_samples": True, **mechanism}
    measured = await serve_auctions(
        url, metric_items, options, concurrency=config.concurrency, desc=f"audit {version}:{mode}: held-out queries"
    )

    def stats(served: Any) -> evaluation.AuctionStats:
        return evaluation.auction_stats(served.item, served.response, click_model=click_model,
                                        click_seed=config.click_seed)  # fmt: skip

    sweep_stats = [stats(s) for s in swept]
    metric_stats = [stats(s) for s in measured]
    per_point = len(config.bid_grid)
    curves = []
    for i, (_, ad_id) in enumerate(sweeps):
        points_stats = sweep_stats[i * per_point : (i + 1) * per_point]
        exposure = [(s.exposure or {}).get(ad_id, 0.0) for s in points_stats]
        curves.append(evaluation.sweep_of(config.bid_grid, [s.itctr[ad_id] for s in points_stats], exposure))
    slopes = {}
    for measure in ("exposure", "itctr"):
        values = [list(getattr(c, measure) or ()) for c in curves]
        test = evaluation.pooled_slope(values, config.bid_grid)
        slopes[measure] = {**asdict(test), "direction": test.direction}
    first = measured[0].response if measured else swept[0].response
    return AuditReport(
        version=version,
        mode=mode,
        model=first["model"],
        ctr_model=first["ctr_model"],
        config=asdict(config),
        metrics=evaluation.summarize(metric_stats) | ceilings(config),
        sweep_summary=evaluation.summarize_sweeps(curves),
        ir_violations=sum(s.ir_violations for s in sweep_stats + metric_stats),
        slopes=slopes,
        sweeps=[
            {"query": item.context.query, "ad_id": ad_id, **asdict(sweep), "monotone": sweep.monotone}
            for (item, ad_id), sweep in zip(sweeps, curves, strict=True)
        ],
    )


def audit_versions(
    arms: list[str], config: AuditConfig, out_dir: Path, env: dict[str, str] | None = None
) -> list[AuditReport]:
    """Audit each arm (``VERSION[:MODE]``), starting the service once per version; write ``<version>[-<mode>].json``,
    ``summary.json`` and the plots into ``out_dir``. The sample cache stays on: seeded sweep points of a
    bid-blind arm share their samples, as in production; with bids in the prompt every bid is its own prompt."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parsed = [parse_arm(spec) for spec in arms]
    by_version: dict[str, list[str]] = {}
    for version, mode in parsed:
        by_version.setdefault(version, []).append(mode)
    done: dict[tuple[str, str], AuditReport] = {}
    for version, modes in by_version.items():
        service_env = {**(env or {}), "AUCTION_MODEL_VERSION": version}
        with running_service(service_env, out_dir / "work", out_dir / "service.log") as service:
            for mode in modes:
                report = asyncio.run(audit_url(service.base_url, version, config, mode))
                name = version if mode == "paper" else f"{version}-{mode}"
                (out_dir / f"{name}.json").write_text(json.dumps(asdict(report), indent=1) + "\n", "utf-8")
                done[version, mode] = report
    reports = [done[arm] for arm in parsed]
    write_summary(reports, out_dir)
    return reports


def _slope_columns(report: AuditReport) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for measure, test in report.slopes.items():
        out[f"{measure}_slope"] = test["delta"]
        out[f"{measure}_slope_ci"] = (
            f"[{test['ci_low']:+.3f}, {test['ci_high']:+.3f}]" if test.get("ci_low") is not None else None
        )
        out[f"{measure}_slope_z"] = test["z"]
    return out


def _interval(metrics: dict[str, float | None], name: str) -> str | None:
    low, high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
    return None if low is None or high is None else f"[{low:.2f}, {high:.2f}]"


INTERVALS = ("revenue", "reward", "oracle_revenue", "ceiling_written", "ceiling_bound")


def summary_rows(reports: list[AuditReport]) -> list[dict[str, Any]]:
    return [
        {
            "arm": r.arm,
            "version": r.version,
            "mode": r.mode,
            **r.metrics,
            **{f"{name}_ci": _interval(r.metrics, name) for name in INTERVALS},
            **r.sweep_summary,
            **_slope_columns(r),
            "ir_violations_all": r.ir_violations,
        }
        for r in reports
    ]


TABLE_COLUMNS = (
    ("arm", "arm (version:mode)", "{}"),
    ("revenue_per_query", "revenue/query", "{:.2f}"),
    ("revenue_ci", "95 % CI", "{}"),
    ("reward_per_query", "reward/query", "{:.2f}"),
    ("reward_ci", "95 % CI", "{}"),
    ("oracle_revenue_per_query", "oracle revenue/query (best of its K)", "{:.2f}"),
    ("oracle_revenue_ci", "95 % CI", "{}"),
    ("ceiling_written_per_query", "best written answer/query", "{:.2f}"),
    ("ceiling_bound_per_query", "bound/query", "{:.2f}"),
    ("valid_ad_share", "valid ad", "{:.1%}"),
    ("valid_ad_share_fitting", "valid ad, an ad fits", "{:.1%}"),
    ("valid_ad_share_unfitting", "valid ad, none fits", "{:.1%}"),
    ("relevant_ad_share", "relevant ad", "{:.1%}"),
    ("relevant_exposure_share", "shown ads relevant", "{:.1%}"),
    ("best_ad_share", "best ad", "{:.1%}"),
    ("format_error_share", "format error", "{:.1%}"),
    ("ads_per_answer", "ads/answer", "{:.2f}"),
    ("answer_relevance", "answer relevance", "{:.3f}"),
    ("served_format_error_share", "broken served", "{:.1%}"),
    ("exposure_slope", "exposure Δ(1→100)", "{:+.3f}"),
    ("exposure_slope_ci", "95 % CI", "{}"),
    ("exposure_slope_z", "z", "{:.1f}"),
    ("itctr_slope", "ITCTR Δ(1→100)", "{:+.4f}"),
    ("itctr_slope_ci", "95 % CI", "{}"),
    ("inert_sweeps", "inert sweeps", "{}"),
    ("ir_violations_all", "IR violations", "{}"),
)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| " + " | ".join(title for _, title, _ in TABLE_COLUMNS) + " |",
        "|" + "---|" * len(TABLE_COLUMNS),
    ]
    for row in rows:
        cells = [fmt.format(row[key]) if row.get(key) is not None else "–" for key, _, fmt in TABLE_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(reports: list[AuditReport], out_dir: Path) -> None:
    rows = summary_rows(reports)
    (out_dir / "summary.json").write_text(json.dumps(rows, indent=1) + "\n", "utf-8")
    (out_dir / "summary.md").write_text(markdown_table(rows), "utf-8")
    plot(reports, out_dir)


def plot(reports: list[AuditReport], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(reports)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), sharey=True, squeeze=False)
    for ax, report in zip(axes[0], reports, strict=True):
        for curve in report.sweeps:
            ax.plot(curve["bids"], curve["itctr"], color="tab:blue", alpha=0.25, linewidth=1)
        if report.sweeps:
            bids = report.sweeps[0]["bids"]
            mean = [sum(c["itctr"][j] for c in report.sweeps) / len(report.sweeps) for j in range(len(bids))]
            ax.plot(bids, mean, color="tab:red", marker="o", linewidth=2, label="mean")
        slope = report.slopes.get("itctr", {})
        title = (
            report.arm
            if slope.get("delta") is None
            else f"{report.arm}\nΔ {slope['delta']:+.3f} ({slope['direction']})"
        )
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("bid of the swept ad")
    axes[0][0].set_ylabel("ITCTR (simulated users)")
    fig.tight_layout()
    fig.savefig(out_dir / "itctr_vs_bid.png", dpi=110)
    plt.close(fig)

    names = [r.arm for r in reports]
    panels = [
        ("revenue_per_query", "revenue / query"),
        ("reward_per_query", "reward / query"),
        ("valid_ad_share", "valid-ad share"),
        ("relevant_ad_share", "relevant-ad share"),
    ]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.2 * (len(panels) + 1), 3.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=False):
        ax.plot(names, [r.metrics[key] for r in reports], marker="o")
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax = axes[0][-1]
    ax.plot(names, [r.slopes.get("exposure", {}).get("delta") or 0.0 for r in reports], marker="o")
    ax.set_title("exposure Δ bid 1→100", fontsize=9)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "metrics_per_round.png", dpi=110)
    plt.close(fig)
