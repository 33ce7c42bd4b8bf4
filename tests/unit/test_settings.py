from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.engine.base import SEED_STRIDE
from service.settings import Bounds, Settings


def test_production_refuses_the_development_secret() -> None:
    key_entry = "partner:" + "a" * 64
    with pytest.raises(ValidationError, match="AUCTION_SECRET_KEY"):
        Settings(environment="production", api_keys=[key_entry])
    Settings(environment="production", secret_key="s" * 40, api_keys=[key_entry])


def test_production_requires_api_keys() -> None:
    with pytest.raises(ValidationError, match="API_KEYS"):
        Settings(environment="production", secret_key="s" * 40)
    assert Settings(environment="production", secret_key="s" * 40, api_keys=["p:" + "a" * 64]).auth_required
    assert not Settings(secret_key="s" * 40).auth_required  # local default: open


def test_api_keys_from_a_comma_separated_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUCTION_API_KEYS", f"a:{'1' * 64},b:{'2' * 64}:metrics")
    assert Settings(secret_key="s" * 40).api_keys == [f"a:{'1' * 64}", f"b:{'2' * 64}:metrics"]


def test_local_default_warns_about_forgeable_links() -> None:
    with pytest.warns(UserWarning, match="forgeable"):
        Settings(environment="local")


def test_port_from_plain_port_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    assert Settings(secret_key="s" * 40).port == 9123


def test_defaults_within_limits_and_model_room() -> None:
    with pytest.raises(ValidationError):
        Settings(secret_key="s" * 40, default_samples=Bounds.MAX_SAMPLES + 1)
    with pytest.raises(ValidationError, match="MAX_MODEL_LEN"):
        Settings(secret_key="s" * 40, max_model_len=600)


def test_seed_stride_keeps_sample_seeds_of_different_requests_apart() -> None:
    assert SEED_STRIDE >= Bounds.MAX_SAMPLES
