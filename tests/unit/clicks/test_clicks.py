from __future__ import annotations

import time

import pytest

from service.clicks.tokens import ClickSigner, ClickTarget
from service.errors import ExpiredClickToken, InvalidClickToken

TARGET = ClickTarget("a1b2", "Ad-7001", "https://example.com/running/archguard-stability-runner", 35.0)


def test_round_trip_and_url_shape() -> None:
    signer = ClickSigner(["k" * 40], "https://ads.test/", 3600)
    url = signer.url(TARGET)
    assert url.startswith("https://ads.test/c/")
    assert signer.verify(url.rsplit("/", 1)[1]) == TARGET


def test_tampered_token_is_refused() -> None:
    signer = ClickSigner(["k" * 40], "https://ads.test", 3600)
    token = signer.token(TARGET)
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    with pytest.raises(InvalidClickToken):
        signer.verify(tampered)


def test_forged_with_another_key_is_refused() -> None:
    forger = ClickSigner(["f" * 40], "https://ads.test", 3600)
    with pytest.raises(InvalidClickToken):
        ClickSigner(["k" * 40], "https://ads.test", 3600).verify(forger.token(TARGET))


def test_key_rotation_old_tokens_verify_until_key_dropped() -> None:
    old, new = "o" * 40, "n" * 40
    token = ClickSigner([old], "https://ads.test", 3600).token(TARGET)
    assert ClickSigner([old, new], "https://ads.test", 3600).verify(token) == TARGET
    with pytest.raises(InvalidClickToken):
        ClickSigner([new], "https://ads.test", 3600).verify(token)


def test_expired_token(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = ClickSigner(["k" * 40], "https://ads.test", 60)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 120)
    token = signer.token(TARGET)
    monkeypatch.setattr(time, "time", real_time)
    with pytest.raises(ExpiredClickToken):
        signer.verify(token)


def test_garbage_is_refused() -> None:
    with pytest.raises(InvalidClickToken):
        ClickSigner(["k" * 40], "https://ads.test", 60).verify("not-a-token")
