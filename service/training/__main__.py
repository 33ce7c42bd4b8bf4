"""Offline training jobs: ``python -m service.training export | fit-ctr | irpo | audit | merge``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from service.mechanism.ctr import DEFAULT_CTR_MODEL
from service.mechanism.objective import ObjectiveWeights
from service.models.ctr_artifact import load_ctr_model, save_ctr_model
from service.settings import PROJECT_ROOT, get_settings
from service.storage.redis import open_redis
from service.training.export import export as run_export
from service.training.fit import fit_ctr as run_fit
from service.training.fit import read_rows


def _job_logging() -> None:
    """Plain-text logs for offline jobs; the per-request lines of their HTTP client would drown the progress bars."""
    import logging

    from service.observability.logging import configure_logging

    configure_logging("info", "text")
    logging.getLogger("httpx").setLevel(logging.WARNING)


cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Training data from the event log")


@cli.command()
def export(
    out_dir: Annotated[Path, typer.Option(help="Where the JSONL files go")] = PROJECT_ROOT / "var" / "export",
    window_s: Annotated[
        float, typer.Option(help="Join window: clicks count up to this long after the impression")
    ] = 3600.0,
    delta: Annotated[float, typer.Option(help="DPO pair threshold δ in objective units (paper: 10)")] = 10.0,
    ctr_model: Annotated[Path | None, typer.Option(help="CTR model JSON for the DPO objective")] = None,
    final: Annotated[bool, typer.Option(help="Export every impression now, without waiting out its window")] = False,
    impressions: Annotated[bool, typer.Option(help="Also write the exported impressions (all K samples)")] = False,
    group: Annotated[str, typer.Option(help="Consumer group")] = "training-export",
    consumer: Annotated[str, typer.Option(help="Consumer name within the group")] = "exporter",
) -> None:
    """CTR rows (features + click label) and DPO pairs (best vs every sample more than δ below) from the streams.
    Redis: REDIS_URL, else the service's embedded server (started on its data dir if the service is down)."""
    settings = get_settings()
    model = load_ctr_model(ctr_model) if ctr_model else DEFAULT_CTR_MODEL
    weights = ObjectiveWeights(settings.objective_lambda, settings.ad_penalty, settings.format_error_penalty)

    async def main() -> None:
        async with open_redis(settings) as redis:
            with tqdm(desc="events read", unit="ev") as bar:
                report = await run_export(
                    redis,
                    out_dir,
                    group=group,
                    consumer=consumer,
                    window_s=window_s,
                    delta=delta,
                    ctr_model=model,
                    weights=weights,
                    final=final,
                    with_impressions=impressions,
                    progress=bar.update,
                )
        typer.echo(json.dumps(dataclasses.asdict(report), indent=2))

    asyncio.run(main())


@cli.command("fit-ctr")
def fit_ctr(
    data: Annotated[list[Path], typer.Argument(help="CTR JSONL files written by export")],
    out: Annotated[Path | None, typer.Option(help="Output JSON; default models/ctr/<version>.json")] = None,
    version: Annotated[str | None, typer.Option(help="Version name; default ctr-<time>-<data hash>")] = None,
    parent: Annotated[
        Path | None, typer.Option(help="The CTR model that priced the traffic; default: built in")
    ] = None,
    holdout: Annotated[
        list[Path] | None, typer.Option(help="CTR JSONL of other traffic: a separate test of every candidate")
    ] = None,
) -> None:
    """Fit the CTR model on exported rows (held-out report and calibration plot beside the output); serve it with
    AUCTION_CTR_MODEL_PATH=<output>. Fewer than 30 clicks: refused, exit 2 (keep the parent)."""
    from service.training.fit import NotEnoughClicks, write_report

    rows = read_rows(tqdm(data, desc="reading", unit="file"))
    parent_model = load_ctr_model(parent) if parent else DEFAULT_CTR_MODEL
    try:
        model, info = run_fit(rows, version, parent_model, read_rows(holdout or []))
    except NotEnoughClicks as exc:
        typer.echo(json.dumps({"refused": str(exc), "keep": parent_model.version}))
        raise typer.Exit(2) from exc
    path = out or PROJECT_ROOT / "models" / "ctr" / f"{model.version}.json"
    save_ctr_model(model, path, info)
    plot = write_report(info, path.with_suffix(""))
    slim = {k: v for k, v in info.items() if k != "calibration"}
    typer.echo(json.dumps({"path": str(path), "report": str(plot.parent), "version": model.version, **slim}, indent=2))


VersionsDirOption = Annotated[Path, typer.Option(help="Model version registry")]


@cli.command()
def irpo(
    run_dir: Annotated[Path, typer.Option(help="Working folder: every stage's output; rerun to resume")] = PROJECT_ROOT
    / "var"
    / "irpo"
    / "run",
    versions_dir: VersionsDirOption = PROJECT_ROOT / "versions",
    rounds: Annotated[int, typer.Option(min=0, help="IRPO rounds after the warm start")] = 3,
    start_from: Annotated[
        str | None, typer.Option("--from", help="Continue from this registered version (no warm start)")
    ] = None,
    prefix: Annotated[str, typer.Option(help="Version names: <prefix>-r<round>")] = "irpo",
    prompt: Annotated[
        str,
        typer.Option(
            help="The warm start's prompt format: p1 (the paper's JSON list), p2 (markers verbatim) or p3 (markers "
            "ranked: fitting ads first, by bid; tip-first answers)"
        ),
    ] = "p1",
    sft_examples: Annotated[int, typer.Option(min=1, help="Synthetic warm-start answers")] = 256,
    openings: Annotated[
        bool, typer.Option(help="p3 answers open by restating the question (--no-openings: sft-p3's corpus)")
    ] = True,
    woven: Annotated[
        bool, typer.Option(help="p3 answers weave the ad into that opening (--no-woven: sft-p3o's corpus)")
    ] = False,
    off_topic: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Share of warm-start questions without a fitting ad (default: uniform)"),
    ] = None,
    ad_penalty: Annotated[
        float | None,
        typer.Option(min=0.0, help="The DPO objective's cost of an ad, at the reference bid 100 (default: the loop's)"),
    ] = None,
    sft_epochs: Annotated[float, typer.Option(min=0.1, help="Warm-start epochs")] = 2.0,
    sft_max_steps: Annotated[int, typer.Option(help="Cap SFT steps (-1: all epochs)")] = -1,
    contexts: Annotated[int, typer.Option(min=1, help="Auctions per round")] = 96,
    samples: Annotated[int, typer.Option(min=2, max=16, help="K samples per auction")] = 8,
    max_tokens: Annotated[int, typer.Option(min=8, help="Tokens per sample")] = 96,
    delta: Annotated[
        float, typer.Option(help="DPO pair threshold δ at the reference bid 100, scaled by each context's top bid")
    ] = 2.0,
    max_pairs: Annotated[int, typer.Option(min=0, help="DPO sample pairs per round (seeded subsample; 0: none)")] = 80,
    swap_pairs: Annotated[
        int, typer.Option(min=0, help="Ad-swap DPO pairs per round on top of --max-pairs (same answer, other ad)")
    ] = 0,
    ctr_gate: Annotated[
        bool, typer.Option(help="Ship a round's CTR refit only if it beats the parent out of fold (AUC, log loss)")
    ] = True,
    dpo_max_steps: Annotated[int, typer.Option(help="Cap DPO steps per round (-1: one epoch)")] = -1,
    beta: Annotated[float, typer.Option(help="DPO β (paper: 0.1)")] = 0.1,
    audit: Annotated[bool, typer.Option(help="Audit base and every version of the run at the end")] = True,
    audit_sweeps: Annotated[int, typer.Option(min=1, help="Bid sweeps (held-out contexts)")] = 8,
    audit_samples: Annotated[int, typer.Option(min=2, max=16, help="K per sweep point")] = 12,
    audit_contexts: Annotated[int, typer.Option(min=1, help="Held-out contexts for revenue/reward")] = 24,
    set_default: Annotated[bool, typer.Option(help="Make the last version the registry's DEFAULT")] = False,
    seed: int = 0,
) -> None:
    """Warm start (LoRA SFT) + IRPO rounds (auctions → clicks → CTR refit → DPO pairs → LoRA DPO → new version)
    + the mechanism audit, through the real service and Redis. Resumable."""
    from service.evaluation.audit import AuditConfig
    from service.mechanism.prompt import prompt_format
    from service.training.irpo import LoopConfig, run_loop

    _job_logging()
    try:
        fmt = prompt_format(prompt)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--prompt") from None
    defaults = LoopConfig()
    audit_config = AuditConfig(
        sweep_contexts=audit_sweeps, sweep_samples=audit_samples, metric_contexts=audit_contexts, max_tokens=max_tokens
    )
    config = LoopConfig(
        run_dir=run_dir,
        versions_dir=versions_dir,
        start_from=start_from,
        prefix=prefix,
        rounds=rounds,
        prompt=fmt,
        sft_examples=sft_examples,
        openings=openings,
        woven=woven,
        off_topic=off_topic,
        sft=dataclasses.replace(defaults.sft, epochs=sft_epochs, max_steps=sft_max_steps),
        contexts_per_round=contexts,
        samples=samples,
        max_tokens=max_tokens,
        delta=delta,
        max_pairs=max_pairs,
        swap_pairs=swap_pairs,
        ctr_must_beat_parent=ctr_gate,
        dpo=dataclasses.replace(defaults.dpo, max_steps=dpo_max_steps, beta=beta),
        weights=(
            defaults.weights if ad_penalty is None else dataclasses.replace(defaults.weights, ad_penalty=ad_penalty)
        ),
        seed=seed,
        audit=audit_config if audit else None,
        set_default=set_default,
    )
    produced = run_loop(config)
    typer.echo(json.dumps({"versions": produced, "run_dir": str(run_dir)}, indent=2))


@cli.command()
def traffic(
    version: Annotated[str, typer.Argument(help="The version that serves (`base`: the bundled model)")],
    run_dir: Annotated[Path, typer.Option(help="Working folder (Redis, service log, export); rerun to resume")] = (
        PROJECT_ROOT / "var" / "traffic"
    ),
    versions_dir: VersionsDirOption = PROJECT_ROOT / "versions",
    contexts: Annotated[int, typer.Option(min=1, help="Auctions (training contexts, fresh bids)")] = 1000,
    samples: Annotated[int, typer.Option(min=2, max=16, help="K samples per auction")] = 8,
    max_tokens: Annotated[int, typer.Option(min=8, help="Tokens per sample")] = 64,
    seed: int = 0,
) -> None:
    """Simulated traffic through the real service (its default selection and payments) with the simulated
    users' clicks, logged to an embedded Redis and exported: the CTR rows that `fit-ctr` learns from."""
    from service.storage.redis import RedisServer, find_redis_server
    from service.training.irpo import LoopConfig, collect, export_round

    _job_logging()
    config = LoopConfig(
        run_dir=run_dir,
        versions_dir=versions_dir,
        contexts_per_round=contexts,
        samples=samples,
        max_tokens=max_tokens,
        seed=seed,
        audit=None,
    )
    server = RedisServer(find_redis_server(), run_dir / "redis", appendfsync="everysec")
    with server.running():
        collected = collect(config, 1, version, server.url)
        exported = export_round(config, 1, server.url)
    typer.echo(json.dumps({"collected": collected, "export": exported}, indent=2, default=str))


@cli.command()
def compare(
    a: Annotated[Path, typer.Argument(help="A's run folder (`traffic --run-dir`) or its auctions.jsonl")],
    b: Annotated[Path, typer.Argument(help="B's, served on the same contexts (same --seed and --contexts)")],
) -> None:
    """B − A auction by auction over the same contexts: revenue, reward, answer relevance, format-error and
    valid-ad shares, each with its paired 95 % t interval (the shipping rules' comparison)."""
    from service.evaluation.metrics import paired_differences

    def rows(path: Path) -> list[dict[str, object]]:
        file = path if path.is_file() else path / "round-1" / "auctions.jsonl"
        return [json.loads(line) for line in file.read_text("utf-8").splitlines() if line.strip()]

    try:
        result = paired_differences(rows(a), rows(b))
    except (OSError, ValueError) as e:
        raise typer.BadParameter(str(e)) from e
    typer.echo(json.dumps(result, indent=2))


@cli.command("audit")
def audit_cmd(
    versions: Annotated[
        list[str],
        typer.Argument(
            help="Arms VERSION[:MODE] in order (`base`: the bundled model; modes: paper, optimal, blind, raw)"
        ),
    ],
    out_dir: Annotated[Path, typer.Option(help="Reports and plots")] = PROJECT_ROOT / "var" / "audit",
    versions_dir: VersionsDirOption = PROJECT_ROOT / "versions",
    sweeps: Annotated[int, typer.Option(min=2, help="Bid sweeps (held-out contexts)")] = 16,
    samples: Annotated[int, typer.Option(min=2, max=16, help="K per sweep point")] = 8,
    contexts: Annotated[int, typer.Option(min=1, help="Held-out contexts for revenue/reward")] = 24,
    max_tokens: Annotated[int, typer.Option(min=8)] = 96,
) -> None:
    """Mechanism audit of model versions: bid sweeps (ITCTR monotonicity, continuity), IR violations, revenue
    and reward per query; JSON reports and PNG plots in OUT_DIR."""
    from service.evaluation.audit import AuditConfig, audit_versions, summary_rows

    _job_logging()
    config = AuditConfig(sweep_contexts=sweeps, sweep_samples=samples, metric_contexts=contexts, max_tokens=max_tokens)
    reports = audit_versions(versions, config, out_dir, env={"AUCTION_VERSIONS_DIR": str(versions_dir)})
    typer.echo(json.dumps(summary_rows(reports), indent=1))


@cli.command()
def ceiling(
    contexts: Annotated[int, typer.Option(min=1, help="Held-out contexts for revenue/reward (the audit's)")] = 24,
) -> None:
    """The revenue/query any model could earn on the audit's held-out contexts from their simulated users: the
    best of the answers we write (one ad or two, in sentences on the question) and an upper bound, with 95 %
    t intervals. No service runs: the scale on which the audit's revenue rows are read."""
    from service.evaluation.audit import AuditConfig, ceilings

    typer.echo(json.dumps(ceilings(AuditConfig(metric_contexts=contexts)), indent=2))


@cli.command()
def merge(
    version: Annotated[str | None, typer.Argument(help="Default: AUCTION_MODEL_VERSION / the DEFAULT")] = None,
) -> None:
    """Merge a version's adapter chain into plain weights and print the folder (AUCTION_VERSIONS_DIR,
    AUCTION_MERGED_MODELS_DIR, AUCTION_MODEL): for an image build or a remote vLLM server; `serve` merges too."""
    from service.models.registry import materialize

    settings = get_settings()
    name = version or settings.model_version or "base"
    typer.echo(str(materialize(settings.versions_dir, name, Path(settings.model), settings.merged_models_dir)))


if __name__ == "__main__":
    cli()
