"""Training data out of the logs: ``python -m service.training export`` and ``… fit-ctr``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from service.config import PROJECT_ROOT, get_settings
from service.mechanism.ctr import DEFAULT_CTR_MODEL
from service.mechanism.objective import ObjectiveWeights
from service.storage.redis import open_redis
from service.training.ctr_artifact import load_ctr_model, save_ctr_model
from service.training.export import export as run_export
from service.training.fit import fit_ctr as run_fit
from service.training.fit import read_rows

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
                    progress=bar.update,
                )
        typer.echo(json.dumps(dataclasses.asdict(report), indent=2))

    asyncio.run(main())


@cli.command("fit-ctr")
def fit_ctr(
    data: Annotated[list[Path], typer.Argument(help="CTR JSONL files written by export")],
    out: Annotated[Path | None, typer.Option(help="Output JSON; default models/ctr/<version>.json")] = None,
    version: Annotated[str | None, typer.Option(help="Version name; default ctr-<time>-<data hash>")] = None,
) -> None:
    """Fit the CTR model on exported rows; serve it with AUCTION_CTR_MODEL_PATH=<output>."""
    rows = read_rows(tqdm(data, desc="reading", unit="file"))
    model, info = run_fit(rows, version)
    path = out or PROJECT_ROOT / "models" / "ctr" / f"{model.version}.json"
    save_ctr_model(model, path, info)
    typer.echo(json.dumps({"path": str(path), "version": model.version, **info}, indent=2))


if __name__ == "__main__":
    cli()
