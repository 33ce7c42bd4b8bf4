"""Simulated users who click (or not) on the ads of a served answer — the paper's User-LLM judge role (§5.1),
as a documented, seeded click model. Pure: no I/O.

For each ad exposed in the answer the user clicks with probability

    p = propensity · sigmoid(−3.0 + 4.0·query_relevance + 1.5·profile_relevance + 0.8·native − 1.0·position)

- ``query_relevance`` / ``profile_relevance``: share of the ad's words (title and URL path) found in the query /
  the profile (the CTR model's features: ``service.mechanism.ctr``);
- ``native``: 1 when the sentence that carries the ad shares a word with the query (woven into the answer),
  0 when it is bolted on;
- ``position``: where the ad first appears, 0 (start) … 1 (end);
- ``propensity``: the user's own click-happiness, drawn once per user id (log-normal, median 1, capped at 2).

Then, as the paper's judge is instructed: if the answer is flooded (``flood_threshold`` or more ads) nothing is
clicked; among competing ads (same category, the first segment of the landing-page path) at most one — the most
likely — can be clicked. Every draw is seeded by (seed, auction id, user id): the same answer to the same user
gives the same clicks.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass

from service.data import ad_category
from service.mechanism.ctr import features, words
from service.mechanism.exposure import parse
from service.mechanism.types import AuctionContext

_SENTENCE_END = re.compile(r"[.!?\n]")


@dataclass(frozen=True, slots=True)
class ClickModel:
    intercept: float = -3.0
    query_weight: float = 4.0
    profile_weight: float = 1.5
    native_weight: float = 0.8
    position_weight: float = -1.0
    flood_threshold: int = 3


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
    query_terms = words(context.query)
    user = propensity(context.user_id, seed)
    out = {}
    for ad_id in exposure.exposed:
        ad = next(a for a in context.ads if a.id == ad_id)
        query_relevance, profile_relevance, position, _ = features(context, ad, exposure)
        placement = next(p for p in exposure.placements if p.ad_id == ad_id)
        start = max((m.end() for m in _SENTENCE_END.finditer(answer, 0, placement.start)), default=0)
        end_match = _SENTENCE_END.search(answer, placement.end)
        sentence = answer[start : end_match.start() if end_match else len(answer)].replace(
            answer[placement.start : placement.end], " "
        )
        native = 1.0 if words(sentence) & query_terms else 0.0
        z = (
            model.intercept
            + model.query_weight * query_relevance
            + model.profile_weight * profile_relevance
            + model.native_weight * native
            + model.position_weight * position
        )
        out[ad_id] = min(1.0, user / (1.0 + math.exp(-z)))
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
