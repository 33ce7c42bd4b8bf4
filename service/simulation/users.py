"""Simulated users who click (or not) on the ads of a served answer — the paper's User-LLM judge role (§5.1),
as a documented, seeded click model. No I/O; it reads the sentence encoder (``service.models.encoder``).

For each ad exposed in the answer the user clicks with probability

    p = propensity · sigmoid(−4.0 + 2.2·match + 4.0·sim_query + 1.5·sim_profile + 0.6·native − 1.0·position)

- ``match``: the ground truth of relevance — 1 when the ad's catalogue category is the query's (the catalogue
  says which category each of its questions is about; 0 for a question it does not know);
- ``sim_query`` / ``sim_profile``: cosine of the ad's text (title + landing-page path) with the query / the
  profile (all-MiniLM-L6-v2): relevance within and across categories beyond the label;
- ``native``: 1 when the sentence that carries the ad is about the question (cosine of that sentence, the ad's
  title removed, with the query ≥ 0.3): woven into the answer rather than bolted on;
- ``position``: where the ad first appears, 0 (start) … 1 (end);
- ``propensity``: the user's own click-happiness, drawn once per user id (log-normal, median 1, capped at 2).

The range, chosen to be realistic for ads inside chat answers while giving the CTR refit enough positives: an
irrelevant ad is clicked ≈1–2 % of the time (sigmoid(−4.3) = 1.3 % mid-answer), a relevant one 10–30 %
(woven in early ≈30 %, bolted on at the end ≈12 %); with a relevant and an irrelevant ad shown about equally
often, the overall CTR is ≈5–8 %, so ≈600 exposures give the refit its minimum of 30 clicks.

Then, as the paper's judge is instructed: if the answer is flooded (``flood_threshold`` or more ads) nothing is
clicked; among competing ads (same category) at most one — the most likely — can be clicked. Every draw is
seeded by (seed, auction id, user id): the same answer to the same user gives the same clicks.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from functools import cache

import numpy as np

from service.data import ad_category, query_category
from service.mechanism.exposure import parse
from service.mechanism.relevance import ad_text, profile_text
from service.mechanism.types import AuctionContext
from service.models.encoder import Encoder, prepare_encoder
from service.settings import DEFAULT_ENCODER_DIR

_SENTENCE_END = re.compile(r"[.!?\n]")


@dataclass(frozen=True, slots=True)
class ClickModel:
    intercept: float = -4.0
    match_weight: float = 2.2
    query_weight: float = 4.0
    profile_weight: float = 1.5
    native_weight: float = 0.6
    native_threshold: float = 0.3
    position_weight: float = -1.0
    flood_threshold: int = 3


@cache
def encoder() -> Encoder:
    """The simulated users' reading of text: the same frozen encoder as the CTR model (loaded once)."""
    return Encoder(prepare_encoder(DEFAULT_ENCODER_DIR))


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def propensity(user_id: str, seed: int) -> float:
    return min(2.0, math.exp(_rng("propensity", seed, user_id).gauss(0.0, 0.4)))


def click_probabilities(
    context: AuctionContext, answer: str, model: ClickModel = ClickModel(), seed: int = 0
) -> dict[str, float]:
    """Probability that this user clicks each ad shown in ``answer`` (before flooding and competition)."""
    exposure = parse(answer, context.ads)
    if not exposure.exposed:
        return {}
    user = propensity(context.user_id, seed)
    topic = query_category(context.query)
    by_id = {ad.id: ad for ad in context.ads}
    shown = [by_id[ad_id] for ad_id in exposure.exposed]
    sentences = []
    for ad in shown:
        placement = next(p for p in exposure.placements if p.ad_id == ad.id)
        start = max((m.end() for m in _SENTENCE_END.finditer(answer, 0, placement.start)), default=0)
        end_match = _SENTENCE_END.search(answer, placement.end)
        sentence = answer[start : end_match.start() if end_match else len(answer)]
        sentences.append(sentence.replace(answer[placement.start : placement.end], " ").strip())
    profile = profile_text(context.profile)
    vectors = encoder().encode([context.query, profile, *(ad_text(ad) for ad in shown), *sentences])
    query_v, profile_v = vectors[0], vectors[1]
    ad_vs, sentence_vs = vectors[2 : 2 + len(shown)], vectors[2 + len(shown) :]
    out = {}
    for ad, ad_v, sentence_v, sentence in zip(shown, ad_vs, sentence_vs, sentences, strict=True):
        position = exposure.first_position(ad.id) or 0.0
        native = 1.0 if sentence and float(np.dot(sentence_v, query_v)) >= model.native_threshold else 0.0
        z = (
            model.intercept
            + model.match_weight * float(topic is not None and ad_category(ad) == topic)
            + model.query_weight * float(np.dot(ad_v, query_v))
            + model.profile_weight * (float(np.dot(ad_v, profile_v)) if profile else 0.0)
            + model.native_weight * native
            + model.position_weight * position
        )
        out[ad.id] = min(1.0, user / (1.0 + math.exp(-z)))
    return out


def simulate_clicks(
    context: AuctionContext, answer: str, auction_id: str, model: ClickModel = ClickModel(), seed: int = 0
) -> list[str]:
    """The ids of the ads this user clicks in the served ``answer``."""
    probabilities = click_probabilities(context, answer, model, seed)
    if len(probabilities) >= model.flood_threshold:
        return []  # flooded with ads: the user clicks nothing
    rng = _rng("clicks", seed, auction_id, context.user_id)
    by_id = {ad.id: ad for ad in context.ads}
    clicked: list[str] = []
    taken_categories: set[str] = set()
    # Most likely first, so that among competitors the one that is clicked is the most attractive.
    for ad_id, p in sorted(probabilities.items(), key=lambda item: -item[1]):
        group = ad_category(by_id[ad_id])
        if group in taken_categories:
            continue  # a competing ad was clicked already
        if rng.random() < p:
            clicked.append(ad_id)
            taken_categories.add(group)
    return clicked


def click_expectations(
    context: AuctionContext, answer: str, model: ClickModel = ClickModel(), seed: int = 0
) -> dict[str, float]:
    """P(this user clicks ad i) for every ad shown in ``answer``, flooding and competition included: exactly the
    distribution ``simulate_clicks`` draws from (an ad is clicked when no likelier competitor was)."""
    probabilities = click_probabilities(context, answer, model, seed)
    if len(probabilities) >= model.flood_threshold:
        return dict.fromkeys(probabilities, 0.0)
    by_id = {ad.id: ad for ad in context.ads}
    none_taken: dict[str, float] = {}  # per category: P(no likelier competitor was clicked)
    out = {}
    for ad_id, p in sorted(probabilities.items(), key=lambda item: -item[1]):
        group = ad_category(by_id[ad_id])
        free = none_taken.get(group, 1.0)
        out[ad_id] = free * p
        none_taken[group] = free * (1.0 - p)
    return out
