"""Similarities for the CTR model (``service.mechanism.relevance``) from the sentence encoder: one batch per auction
(query, profile, every (sample, exposed ad) window; ad texts come from the encoder's cache after their first
auction). Blocking CPU work: call it in a worker thread."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.mechanism.exposure import Exposure
from service.mechanism.relevance import Relevance, ad_text, profile_text, windows
from service.mechanism.types import AuctionContext
from service.models.encoder import Encoder


def _texts(context: AuctionContext, exposures: Sequence[Exposure]) -> tuple[dict[tuple[int, str], str], list[str]]:
    spans = windows(exposures)
    return spans, [context.query, profile_text(context.profile), *(ad_text(ad) for ad in context.ads), *spans.values()]


def cheap(encoder: Encoder, context: AuctionContext, exposures: Sequence[Exposure]) -> bool:
    """Every text is in the encoder's cache (a sample-cache hit, a repeated answer): ``score`` is a few dot
    products, cheaper inline than the hop to a worker thread."""
    return encoder.all_cached(_texts(context, exposures)[1])


def score(encoder: Encoder, context: AuctionContext, exposures: Sequence[Exposure]) -> Relevance:
    spans, texts = _texts(context, exposures)
    ads = texts[2 : 2 + len(context.ads)]
    profile = texts[1]
    vectors = encoder.encode(texts)
    query_v, profile_v = vectors[0], vectors[1]
    ad_v = dict(zip((ad.id for ad in context.ads), vectors[2 : 2 + len(ads)], strict=True))
    window_v = vectors[2 + len(ads) :]
    has_profile = bool(profile.strip())
    return Relevance(
        query={ad_id: float(np.dot(v, query_v)) for ad_id, v in ad_v.items()},
        profile={ad_id: float(np.dot(v, profile_v)) if has_profile else 0.0 for ad_id, v in ad_v.items()},
        around={key: float(np.dot(ad_v[key[1]], v)) for key, v in zip(spans, window_v, strict=True)},
    )
