from __future__ import annotations

import pytest
from pydantic import ValidationError

from service import limits
from service.config import Settings
from service.engine.base import SEED_STRIDE


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValidationError, match="AUCTION_SECRET_KEY"):
        Settings(environment="production")
    Settings(environment="production", secret_key="s" * 40)


def test_local_default_warns_about_forgeable_links() -> None:
    with pytest.warns(UserWarning, match="forgeable"):
        Settings(environment="local")


def test_port_from_plain_port_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    assert Settings(secret_key="s" * 40).port == 9123


def test_defaults_within_limits_and_model_room() -> None:
    with pytest.raises(ValidationError):
        Settings(secret_key="s" * 40, default_samples=limits.MAX_SAMPLES + 1)
    with pytest.raises(ValidationError, match="MAX_MODEL_LEN"):
        Settings(secret_key="s" * 40, max_model_len=600)


def test_seed_stride_keeps_sample_seeds_of_different_requests_apart() -> None:
    assert SEED_STRIDE >= limits.MAX_SAMPLES
