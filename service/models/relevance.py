"""Similarities for the CTR model (``service.mechanism.relevance``) from the sentence encoder: one batch per auction
(query, profile, every (sample, exposed ad) window, the ads and their category neighbours; ad texts come from the
encoder's cache after their first auction). Blocking CPU work: call it in a worker thread.

An ad's topic is the centroid of its category: the catalogue's ads of that category and the auction's candidates
of it (``service.data.ad_category``: as the request states it, else the landing page's first path segment). One
title says what one product is; five of them say what the category is about, so "pans for searing steak" finds
the kitchen category even where the Copper Pan Set's title shares no word with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from service.data import ad_category, catalog, catalog_ad
from service.mechanism.exposure import Exposure
from service.mechanism.relevance import Relevance, ad_text, profile_text, windows
from service.mechanism.types import AuctionContext
from service.models.encoder import Encoder, Vector


@cache
def _catalog_members() -> dict[str, tuple[str, ...]]:
    """Category → the catalogue's ad texts of it (the fixed part of every topic centroid)."""
    members: dict[str, dict[str, None]] = {}
    for item in catalog()["ads"]:
        members.setdefault(str(item["category"]), {})[ad_text(catalog_ad(item, 0.0))] = None
    return {category: tuple(texts) for category, texts in members.items()}


def warm_topics(encoder: Encoder) -> None:
    """Embed the catalogue's part of every topic at start-up (≈60 short texts, a fraction of a second), so the
    first auction of each category does not pay for it."""
    encoder.encode([t for texts in _catalog_members().values() for t in texts])


def _topic_members(context: AuctionContext) -> dict[str, tuple[str, ...]]:
    """Category of each candidate → the texts whose centroid is that topic (catalogue's, then the auction's own)."""
    members: dict[str, dict[str, None]] = {}
    for ad in context.ads:
        category = ad_category(ad)
        texts = members.setdefault(category, dict.fromkeys(_catalog_members().get(category, ())))
        texts[ad_text(ad)] = None
    return {category: tuple(texts) for category, texts in members.items()}


def _texts(
    context: AuctionContext, exposures: Sequence[Exposure]
) -> tuple[dict[tuple[int, str], str], dict[str, tuple[str, ...]], list[str]]:
    spans = windows(exposures)
    topics = _topic_members(context)
    neighbours = [t for texts in topics.values() for t in texts]
    own = [context.query, profile_text(context.profile), *(ad_text(ad) for ad in context.ads)]
    return spans, topics, [*own, *spans.values(), *neighbours]


def score_cached(encoder: Encoder, context: AuctionContext, exposures: Sequence[Exposure]) -> Relevance | None:
    """``score`` when every text is in the encoder's cache (a few dot products: run it inline on the event loop),
    else None (the caller runs ``score`` in a worker thread). One pass over the texts either way."""
    spans, topics, texts = _texts(context, exposures)
    vectors = encoder.cached_vectors(texts)
    return None if vectors is None else _relevance(context, spans, topics, texts, vectors)


def _centroid(vectors: Sequence[Vector]) -> Vector:
    mean: Vector = np.mean(np.stack(vectors), axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def score(encoder: Encoder, context: AuctionContext, exposures: Sequence[Exposure]) -> Relevance:
    spans, topics, texts = _texts(context, exposures)
    return _relevance(context, spans, topics, texts, encoder.encode(texts))


def _relevance(
    context: AuctionContext,
    spans: dict[tuple[int, str], str],
    topics: dict[str, tuple[str, ...]],
    texts: list[str],
    vectors: list[Vector],
) -> Relevance:
    n_ads = len(context.ads)
    profile = texts[1]
    by_text = dict(zip(texts, vectors, strict=True))
    query_v, profile_v = vectors[0], vectors[1]
    ad_v = dict(zip((ad.id for ad in context.ads), vectors[2 : 2 + n_ads], strict=True))
    window_v = vectors[2 + n_ads : 2 + n_ads + len(spans)]
    topic_v = {category: _centroid([by_text[t] for t in members]) for category, members in topics.items()}
    has_profile = bool(profile.strip())
    return Relevance(
        query={ad_id: float(np.dot(v, query_v)) for ad_id, v in ad_v.items()},
        profile={ad_id: float(np.dot(v, profile_v)) if has_profile else 0.0 for ad_id, v in ad_v.items()},
        around={key: float(np.dot(ad_v[key[1]], v)) for key, v in zip(spans, window_v, strict=True)},
        topic={ad.id: float(np.dot(topic_v[ad_category(ad)], query_v)) for ad in context.ads},
        native={key: float(np.dot(query_v, v)) for key, v in zip(spans, window_v, strict=True)},
    )


def topic_fit(encoder: Encoder, context: AuctionContext) -> dict[str, float]:
    """Each candidate's fit to the question, sim(question, the ad's topic): what a ranked prompt format lists by
    (``service.mechanism.prompt.listing``). Blocking CPU work, as ``score``."""
    return dict(score(encoder, context, ()).topic)
