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


def score(encoder: Encoder, context: AuctionContext, exposures: Sequence[Exposure]) -> Relevance:
    spans = windows(exposures)
    ads = [ad_text(ad) for ad in context.ads]
    profile = profile_text(context.profile)
    texts = [context.query, profile, *ads, *spans.values()]
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
