"""The marker grammar in the engine's own dialect: xgrammar (vLLM's structured-output backend, CPU and GPU) compiled
against the bundled model's tokenizer accepts exactly the texts Python's ``re`` accepts — the language the
exposure tests check against ``parse`` — including titles full of regex metacharacters."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.mechanism.exposure import marker_regex
from service.settings import DEFAULT_MODEL_DIR
from tests.unit.mechanism.test_exposure import FRAGMENTS, GRAMMAR_ADS


@pytest.fixture(scope="module")
def compiled() -> tuple[Any, int]:
    if not (DEFAULT_MODEL_DIR / "tokenizer.json").exists():
        pytest.skip("the bundled model is not prepared (make model)")
    import xgrammar as xgr
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(DEFAULT_MODEL_DIR))
    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(tokenizer), max_threads=1)
    return compiler.compile_regex(marker_regex(GRAMMAR_ADS)), int(tokenizer.eos_token_id)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=6))
def test_xgrammar_accepts_exactly_the_regex_language(compiled: tuple[Any, int], parts: list[str]) -> None:
    import xgrammar as xgr

    grammar, eos = compiled
    text = "".join(parts)
    matcher = xgr.GrammarMatcher(grammar)
    accepted = matcher.accept_string(text) and matcher.accept_token(eos)  # the whole text, then the end
    assert accepted == (re.fullmatch(marker_regex(GRAMMAR_ADS), text) is not None), text
