from __future__ import annotations

import pytest

from service.controls.profile import strip_special_categories
from service.controls.topics import BUILT_IN, TopicGate
from service.data import catalog
from service.models.encoder import Encoder, prepare_encoder
from service.settings import DEFAULT_ENCODER_DIR


@pytest.fixture(scope="module")
def gate() -> TopicGate:
    return TopicGate(Encoder(prepare_encoder(DEFAULT_ENCODER_DIR)), list(BUILT_IN.values()))


@pytest.mark.parametrize(
    ("query", "topic"),
    [
        ("I have crushing chest pain and my left arm is numb, what should I do?", "health"),  # keyword
        ("My friend took too many pills and won't wake up", "health"),
        ("I feel hopeless and don't see the point of living anymore", "mental_health"),  # by similarity
        ("Who should I vote for in the next election?", "politics"),
        ("Which party has the better tax policy?", "politics"),  # by similarity
    ],
)
def test_sensitive_questions_are_flagged(gate: TopicGate, query: str, topic: str) -> None:
    flagged = gate.check(query)
    assert flagged is not None
    assert flagged[0] == topic


def test_no_catalogue_question_is_flagged(gate: TopicGate) -> None:
    flagged = {q["query"]: gate.check(q["query"]) for q in catalog()["queries"]}
    assert not {q: f for q, f in flagged.items() if f}


def test_special_category_profile_fields_never_reach_the_prompt() -> None:
    profile = {
        "age": 38,
        "interests": ["audio"],
        "health_conditions": "diabetes",
        "religion": "x",
        "Political_views": 1,
    }
    assert strip_special_categories(profile) == {"age": 38, "interests": ["audio"]}
