"""The prompt an auction is prepared with follows the served version's format, through the model's real tokenizer
and chat template (no engine needed: preparation only reads its tokenizer and context length)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest

from service.auctions.preparation import prepare
from service.auctions.schemas import AuctionRequest
from service.engine.tokenizer import HFChatTokenizer
from service.errors import InvalidRequest
from service.mechanism.exposure import marker_regex
from service.settings import DEFAULT_MODEL_DIR, Settings


@dataclass(frozen=True)
class TokenizerOnly:
    """What ``prepare`` reads of an engine."""

    tokenizer: HFChatTokenizer
    max_model_len: int = 4096
    model_name: str = "test"


@pytest.fixture(scope="module")
def engine() -> TokenizerOnly:
    if not (DEFAULT_MODEL_DIR / "tokenizer.json").exists():
        pytest.skip("the bundled model is not prepared (make model)")
    return TokenizerOnly(HFChatTokenizer.load(str(DEFAULT_MODEL_DIR)))


def request(**options: Any) -> AuctionRequest:
    return AuctionRequest.model_validate(
        {
            "query": "best running shoe?",
            "user": {"id": "u1"},
            "ads": [{"id": "Ad-1", "title": "Runner One", "url": "https://example.com/r1", "bid": 10}],
            "options": options,
        }
    )


@pytest.mark.parametrize(
    ("fmt", "bids", "version", "line"),
    [
        (None, True, "p1", '{"Ad ID": "Ad-1", "Ad Title": "Runner One", "Ad Bid": "10"}'),
        ("p1", False, "p1-blind", '{"Ad ID": "Ad-1", "Ad Title": "Runner One"}'),
        ("p2", True, "p2", "@Runner One@[Ad-1] (bid 10)"),
        ("p2", False, "p2-blind", "@Runner One@[Ad-1]"),
    ],
)
def test_the_prompt_follows_the_served_format(
    engine: TokenizerOnly, fmt: str | None, bids: bool, version: str, line: str
) -> None:
    settings = Settings(secret_key="s" * 40, prompt_format=fmt)
    prepared = prepare(request(bids_in_prompt=bids), "a1", engine, settings)  # type: ignore[arg-type]
    assert prepared.prompt.version == version
    assert line in prepared.prompt.text.splitlines()
    assert prepared.token_ids == engine.tokenizer.encode(prepared.prompt.text)


def test_p3_lists_the_fitting_ads_first_by_the_fit_it_is_given(engine: TokenizerOnly) -> None:
    settings = Settings(secret_key="s" * 40, prompt_format="p3")
    fitting = prepare(request(), "a1", engine, settings, fit={"Ad-1": 0.4})  # type: ignore[arg-type]
    lines = fitting.prompt.text.splitlines()
    assert lines[lines.index("Ads that fit this question, best first:") + 1] == "@Runner One@[Ad-1] (bid 10)"
    assert fitting.prompt.version == "p3"
    assert dict(fitting.prompt.fit) == {"Ad-1": 0.4}
    unfit = prepare(request(), "a1", engine, settings, fit={"Ad-1": 0.01})  # type: ignore[arg-type]
    lines = unfit.prompt.text.splitlines()
    assert lines[lines.index("Other ads:") + 1] == "@Runner One@[Ad-1] (bid 10)"
    assert unfit.prompt.hash != fitting.prompt.hash  # the sample cache never mixes the two


def test_a_prompt_too_long_for_the_model_is_refused(engine: TokenizerOnly) -> None:
    settings = Settings(secret_key="s" * 40, prompt_format="p2")
    with pytest.raises(InvalidRequest, match="the prompt has"):
        prepare(request(max_tokens=64), "a1", TokenizerOnly(engine.tokenizer, max_model_len=300), settings)  # type: ignore[arg-type]


def test_decoding_is_constrained_to_the_eligible_candidates_markers(engine: TokenizerOnly) -> None:
    settings = Settings(secret_key="s" * 40)
    assert settings.constrain_markers  # the deployment's default
    prepared = prepare(request(), "a1", engine, settings)  # type: ignore[arg-type]
    assert prepared.sampling.regex == marker_regex(prepared.context.ads)
    assert "Runner One@\\[Ad-1\\]" in prepared.sampling.regex
    # The controls removed every ad: no marker can be written at all.
    no_ads = dataclasses.replace(prepared.context, ads=())
    assert prepare(request(), "a1", engine, settings, context=no_ads).sampling.regex == "[^@]*"  # type: ignore[arg-type]
    raw = prepare(request(constrain_markers=False), "a1", engine, settings)  # type: ignore[arg-type]
    assert raw.sampling.regex is None
    off = Settings(secret_key="s" * 40, constrain_markers=False)
    assert prepare(request(), "a1", engine, off).sampling.regex is None  # type: ignore[arg-type]
    assert prepare(request(constrain_markers=True), "a1", engine, off).sampling.regex is not None  # type: ignore[arg-type]
