"""Mechanism audit of model versions: on held-out contexts, through the real service, sweep one relevant ad's bid
over a grid and estimate its ITCTR with K samples per point; measure revenue, reward and ad quality on further
held-out contexts; check individual rationality on every auction. Writes one JSON report per version, a summary
and PNG plots. An offline job: it starts the service itself, one version at a time.

The definitions (fixed click-simulator yardstick, monotone within two standard errors, …) are in
``service.training.evaluation``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from service.training import evaluation
from service.training.click_simulator import ClickModel
from service.training.contexts import draw_contexts, sweep_contexts, with_bid
from service.training.service_process import running_service
from service.training.traffic import serve_auctions


@dataclass(frozen=True, slots=True)
class AuditConfig:
    sweep_contexts: int = 8
    bid_grid: tuple[float, ...] = (1.0, 25.0, 50.0, 75.0, 100.0)
    sweep_samples: int = 12  # K per grid point
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
    metrics: dict[str, float]
    sweep_summary: dict[str, float | None]
    ir_violations: int
    sweeps: list[dict[str, Any]] = field(default_factory=list)


async def audit_url(url: str, version: str, config: AuditConfig) -> AuditReport:
    """Audit the model version the service at ``url`` serves."""
    click_model = ClickModel()
    sweeps = sweep_contexts(config.seed, config.sweep_contexts)
    points = [(i, bid) for i in range(len(sweeps)) for bid in config.bid_grid]
    sweep_items = [with_bid(sweeps[i][0], sweeps[i][1], bid) for i, bid in points]
    options = {"samples": config.sweep_samples, "max_tokens": config.max_tokens, "return_samples": True}
    swept = await serve_auctions(
        url, sweep_items, options, concurrency=config.concurrency, desc=f"audit {version}: bid sweeps"
    )
    metric_items = draw_contexts(config.seed + 1, config.metric_contexts, "heldout")
    options = {"samples": config.metric_samples, "max_tokens": config.max_tokens, "return_samples": True}
    measured = await serve_auctions(
        url, metric_items, options, concurrency=config.concurrency, desc=f"audit {version}: held-out queries"
    )

    def stats(served: Any) -> evaluation.AuctionStats:
        return evaluation.auction_stats(served.item, served.response, click_model=click_model,
                                        click_seed=config.click_seed)  # fmt: skip

    sweep_stats = [stats(s) for s in swept]
    metric_stats = [stats(s) for s in measured]
    per_point = len(config.bid_grid)
    curves = [
        evaluation.sweep_of(config.bid_grid, [s.itctr[ad_id] for s in sweep_stats[i * per_point : (i + 1) * per_point]])
        for i, (_, ad_id) in enumerate(sweeps)
    ]
    first = measured[0].response if measured else swept[0].response
    return AuditReport(
        version=version,
        model=first["model"],
        ctr_model=first["ctr_model"],
        config=asdict(config),
        metrics=evaluation.summarize(metric_stats),
        sweep_summary=evaluation.summarize_sweeps(curves),
        ir_violations=sum(s.ir_violations for s in sweep_stats + metric_stats),
        sweeps=[
            {"query": item.context.query, "ad_id": ad_id, **asdict(sweep), "monotone": sweep.monotone}
            for (item, ad_id), sweep in zip(sweeps, curves, strict=True)
        ],
    )


def audit_versions(
    versions: list[str], config: AuditConfig, out_dir: Path, env: dict[str, str] | None = None
) -> list[AuditReport]:
    """Start the service on each version in turn and audit it; write ``<version>.json``, ``summary.json`` and
    the plots into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    for version in versions:
        path = out_dir / f"{version}.json"
        service_env = {**(env or {}), "AUCTION_MODEL_VERSION": version, "AUCTION_SAMPLE_CACHE_TTL_S": "0"}
        with running_service(service_env, out_dir / "work", out_dir / "service.log") as service:
            report = asyncio.run(audit_url(service.base_url, version, config))
        path.write_text(json.dumps(asdict(report), indent=1) + "\n", "utf-8")
        reports.append(report)
    write_summary(reports, out_dir)
    return reports


def summary_rows(reports: list[AuditReport]) -> list[dict[str, Any]]:
    return [
        {"version": r.version, **r.metrics, **r.sweep_summary, "ir_violations_all": r.ir_violations} for r in reports
    ]


TABLE_COLUMNS = (
    ("version", "version", "{}"),
    ("revenue_per_query", "revenue/query", "{:.2f}"),
    ("reward_per_query", "reward/query", "{:.2f}"),
    ("valid_ad_share", "valid ad", "{:.1%}"),
    ("relevant_ad_share", "relevant ad", "{:.1%}"),
    ("best_ad_share", "best ad", "{:.1%}"),
    ("format_error_share", "format error", "{:.1%}"),
    ("ads_per_answer", "ads/answer", "{:.2f}"),
    ("monotone_share", "monotone", "{:.0%}"),
    ("inert_sweeps", "inert sweeps", "{}"),
    ("monotone_share_live", "monotone (ad shown)", "{:.0%}"),
    ("rising_share", "rising", "{:.0%}"),
    ("mean_max_jump", "max jump", "{:.3f}"),
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
        share = report.sweep_summary.get("monotone_share")
        ax.set_title(f"{report.version}\nmonotone {share:.0%}" if share is not None else report.version, fontsize=9)
        ax.set_xlabel("bid of the swept ad")
    axes[0][0].set_ylabel("ITCTR (simulated users)")
    fig.tight_layout()
    fig.savefig(out_dir / "itctr_vs_bid.png", dpi=110)
    plt.close(fig)

    names = [r.version for r in reports]
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
    ax.plot(names, [r.sweep_summary.get("monotone_share") or 0.0 for r in reports], marker="o")
    ax.set_title("monotone share", fontsize=9)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "metrics_per_round.png", dpi=110)
    plt.close(fig)
