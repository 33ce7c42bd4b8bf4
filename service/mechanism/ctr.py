"""Click-through rate ``ctr_i(x, h, a_i, y)`` of an exposed ad, given the whole context and response.

The paper's pCTR model (§4.1.1, App. B.2.2) embeds query and response with a frozen text encoder and feeds the
embeddings with user and ad ids to an MLP. Ours, at this scale: the frozen encoder is all-MiniLM-L6-v2
(``service.models.encoder``), and the model is a logistic regression over eight features of ad ``a_i`` exposed in
response ``y`` (``FEATURE_NAMES``):

- ``query_similarity``    cosine of the ad's text (title + landing-page path words) with the query;
- ``profile_similarity``  cosine of the ad's text with the user's profile;
- ``context_similarity``  cosine of the ad's text with the answer's words around its first marker;
- ``position``            relative position of the ad's first marker in the response, 0 (start) .. 1 (end);
- ``extra_ads``           number of other distinct ads exposed in the same response (crowding);
- ``topic_similarity``    cosine of the query with the centroid of the ad's category (its catalogue neighbours and
                          the auction's candidates of that category): the question is about what the ad sells,
                          which one ad's title says only in part (issue 15's first lever);
- ``native_similarity``   cosine of the words around the ad's marker with the query: the ad is woven into an
                          answer to the question rather than bolted on after it;
- ``user_click_rate``     the user's smoothed click rate on the ads shown to them before
                          (``relevance.user_click_rate``; Redis counts exposures and first clicks per user): the
                          paper's user embedding, at our scale — some users click more than others.

The similarities come in a ``Relevance`` (computed by the encoder outside this pure module).
``ctr = sigmoid(intercept + Σ coef_f · feature_f)``. Default coefficients (``DEFAULT_CTR_MODEL``, before any
click is logged): intercept −4.0, query +8, profile +2, context +2, position −0.6, extra_ads −0.35, and 0 on
the three round-2 features (the default prices as round 2's first session did; a refit learns them). On the
catalogue, a relevant ad's query similarity has median 0.19 (10–90 %: 0.09–0.38), an irrelevant one's 0.02
(−0.07–0.12): an irrelevant ad mid-answer is priced ≈2 %, a typical relevant one ≈10 %, a very close one ≈40 %.
``fit-ctr`` replaces the coefficients with ones learnt from logged clicks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from service.mechanism.exposure import Exposure
from service.mechanism.relevance import NO_RELEVANCE, Relevance
from service.mechanism.types import Ad, AuctionContext

FEATURE_NAMES: tuple[str, ...] = (
    "query_similarity",
    "profile_similarity",
    "context_similarity",
    "position",
    "extra_ads",
    "topic_similarity",
    "native_similarity",
    "user_click_rate",
)


def features(
    context: AuctionContext, ad: Ad, exposure: Exposure, relevance: Relevance = NO_RELEVANCE, sample: int = 0
) -> tuple[float, ...]:
    """Feature vector (in ``FEATURE_NAMES`` order) of ``ad`` in response ``sample``, where it is exposed."""
    position = exposure.first_position(ad.id)
    if position is None:
        raise ValueError(f"ad {ad.id} is not exposed in this response")
    return (
        relevance.query.get(ad.id, 0.0),
        relevance.profile.get(ad.id, 0.0),
        relevance.around.get((sample, ad.id), 0.0),
        position,
        float(exposure.n_ads - 1),
        relevance.topic.get(ad.id, 0.0),
        relevance.native.get((sample, ad.id), 0.0),
        relevance.user,
    )


class CTRModel(Protocol):
    @property
    def version(self) -> str: ...

    def predict(self, feature_vector: tuple[float, ...]) -> float: ...


@dataclass(frozen=True, slots=True)
class LogisticCTRModel:
    version: str
    intercept: float
    coefficients: Mapping[str, float] = field(default_factory=dict)

    def predict(self, feature_vector: tuple[float, ...]) -> float:
        z = self.intercept + sum(
            self.coefficients.get(name, 0.0) * value for name, value in zip(FEATURE_NAMES, feature_vector, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-z))


DEFAULT_CTR_MODEL = LogisticCTRModel(
    version="semantic-v1",
    intercept=-4.0,
    coefficients={
        "query_similarity": 8.0,
        "profile_similarity": 2.0,
        "context_similarity": 2.0,
        "position": -0.6,
        "extra_ads": -0.35,
    },
)


def ctr_row(
    context: AuctionContext,
    exposure: Exposure,
    model: CTRModel,
    relevance: Relevance = NO_RELEVANCE,
    sample: int = 0,
) -> tuple[float, ...]:
    """``ctr_i(x,h,a_i,y)·1(a_i ∈ y)`` for every candidate, in candidate order (0 where not exposed)."""
    exposed = set(exposure.exposed)
    return tuple(
        model.predict(features(context, ad, exposure, relevance, sample)) if ad.id in exposed else 0.0
        for ad in context.ads
    )
