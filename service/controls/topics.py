"""The sensitive-topic gate on the question: no ads next to a health scare, a mental-health crisis or politics
(and any topic a deployment adds). Two signals, either suffices: a keyword list per topic (whole words, case-
insensitive: precise, never misses the obvious) and the sentence encoder's cosine to the topic's descriptions
(catches paraphrases), above a threshold calibrated on the catalogue: its 41 questions score at most 0.29
against any description (the French Revolution question), while "I feel hopeless and don't see the point of
living anymore" scores 0.48 and a chest-pain emergency 0.57; the default threshold is 0.40. What neither signal
catches is listed in the tests, so a deployment extending the lists sees the gaps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from service.models.encoder import Encoder


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    descriptions: tuple[str, ...]
    keywords: tuple[str, ...]


BUILT_IN: Mapping[str, Topic] = {
    "health": Topic(
        "health",
        (
            "a medical emergency, symptoms of a serious illness, chest pain, an injury, what to do",
            "questions about a disease, a diagnosis, medication, a doctor or a hospital",
        ),
        (
            "chest pain",
            "heart attack",
            "stroke",
            "overdose",
            "bleeding",
            "ambulance",
            "emergency room",
            "diagnosis",
            "cancer",
            "tumor",
            "seizure",
            "symptoms",
            "poisoning",
            "unconscious",
            "can't breathe",
            "too many pills",
            "won't wake up",
            "swallowed",
            "choking",
        ),
    ),
    "mental_health": Topic(
        "mental_health",
        (
            "feeling depressed, anxious or hopeless, thoughts of self-harm or suicide",
            "mental health crisis, panic attacks, eating disorder, therapy",
        ),
        (
            "suicide",
            "suicidal",
            "self-harm",
            "self harm",
            "kill myself",
            "depressed",
            "depression",
            "panic attack",
            "eating disorder",
            "want to die",
        ),
    ),
    "politics": Topic(
        "politics",
        ("elections, voting, political parties, candidates and campaigns", "government policy debates, politicians"),
        (
            "election",
            "vote for",
            "voting",
            "political party",
            "democrat",
            "republican",
            "candidate",
            "parliament",
            "senator",
            "referendum",
        ),
    ),
}


class TopicGate:
    def __init__(self, encoder: Encoder, topics: Sequence[Topic], threshold: float = 0.40) -> None:
        self._encoder = encoder
        self._topics = tuple(topics)
        self._threshold = threshold
        self._patterns = {
            t.name: re.compile(r"\b(?:" + "|".join(re.escape(k) for k in t.keywords) + r")\b", re.IGNORECASE)
            for t in self._topics
            if t.keywords
        }
        self._descriptions = [(t.name, d) for t in self._topics for d in t.descriptions]

    def cheap(self, query: str) -> bool:
        """``check`` needs no encoder forward pass for this query (its embedding is cached): run it inline."""
        return not self._descriptions or self._encoder.cached(query)

    def check(self, query: str) -> tuple[str, float] | None:
        """The topic the query is about, with its evidence (1.0 for a keyword, else the cosine), or None.
        Blocking (the encoder): call it in a worker thread."""
        for name, pattern in self._patterns.items():
            if pattern.search(query):
                return name, 1.0
        if not self._descriptions:
            return None
        vectors = self._encoder.encode([query, *(d for _, d in self._descriptions)])
        scores = [float(np.dot(vectors[0], v)) for v in vectors[1:]]
        best = max(range(len(scores)), key=lambda i: scores[i])
        if scores[best] >= self._threshold:
            return self._descriptions[best][0], scores[best]
        return None
