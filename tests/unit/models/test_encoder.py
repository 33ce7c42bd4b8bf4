"""The CTR model's encoder and the default model on the catalogue: does it know what an ad is about?"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from service.data import ad_category, catalog, catalog_ad, profile_of
from service.mechanism.ctr import DEFAULT_CTR_MODEL, ctr_row
from service.mechanism.exposure import parse
from service.mechanism.types import AuctionContext
from service.models.encoder import Encoder, EncoderError, prepare_encoder
from service.models.relevance import score, score_cached
from service.settings import DEFAULT_ENCODER_DIR


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return Encoder(prepare_encoder(DEFAULT_ENCODER_DIR))


def test_similar_texts_are_closer(encoder: Encoder) -> None:
    question, anc, grinder = encoder.encode(
        ["What headphones are good for a noisy open office?", "AuraSound ANC Headphones", "BrewMaster Burr Grinder"]
    )
    assert float(question @ anc) > 0.3 > float(question @ grinder)
    assert encoder.cached("AuraSound ANC Headphones")  # ad content is fixed: a repeated ad costs nothing


def test_a_folder_that_is_not_an_encoder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="not a sentence-transformers folder"):
        Encoder(tmp_path)


def test_the_default_ctr_model_ranks_the_catalogues_relevant_ads_first(encoder: Encoder) -> None:
    """AUC of the default model's CTR (each ad placed first in a one-line answer) against the catalogue's categories,
    over every (on-topic question, ad) pair: the issue's bar is 0.85 (round 1's word overlap: 0.65)."""
    data = catalog()
    ads = tuple(catalog_ad(a, 10.0) for a in data["ads"])
    labels, scores = [], []
    for i, query in enumerate(q for q in data["queries"] if q["category"] != "none"):
        user_id, profile = profile_of(data["profiles"][i % len(data["profiles"])])
        for ad in ads:
            context = AuctionContext(query["query"], user_id, profile, (ad,))
            exposure = parse(f"{ad.marker} is worth a look.", context.ads)
            relevance = score(encoder, context, [exposure])
            scores.append(ctr_row(context, exposure, DEFAULT_CTR_MODEL, relevance)[0])
            labels.append(ad_category(ad) == query["category"])
    auc = roc_auc_score(labels, scores)
    relevant = sorted(s for s, y in zip(scores, labels, strict=True) if y)
    other = sorted(s for s, y in zip(scores, labels, strict=True) if not y)
    print(
        f"\ndefault CTR model on the catalogue: AUC {auc:.3f} over {len(labels)} pairs; median CTR relevant "
        f"{relevant[len(relevant) // 2]:.3f}, irrelevant {other[len(other) // 2]:.3f}"
    )
    assert auc >= 0.85


def test_relevance_is_cheap_only_once_every_text_was_encoded(encoder: Encoder) -> None:
    """The auction scores relevance inline (no worker-thread hop) only when nothing needs the encoder's model."""
    data = catalog()
    ads = tuple(catalog_ad(a, 10.0) for a in data["ads"][:3])
    user_id, profile = profile_of(data["profiles"][0])
    context = AuctionContext(f"A question never asked before {time.time_ns()}?", user_id, profile, ads)
    exposures = [parse(f"Try {ads[0].marker} today.", ads), parse("No ad here.", ads)]
    assert score_cached(encoder, context, exposures) is None
    first = score(encoder, context, exposures)
    assert score_cached(encoder, context, exposures) == first
    assert score(encoder, context, exposures) == first


def test_the_topic_feature_finds_what_the_question_is_about(encoder: Encoder) -> None:
    """``topic_similarity`` (the query against the centroid of the ad's category) on every (on-topic question, ad)
    pair of the catalogue, next to ``query_similarity`` (the ad's own text): the issue's example question shares no
    word with the Copper Pan Set, and round 1 priced it below an espresso machine, a robo-advisor and a rower."""
    data = catalog()
    ads = tuple(catalog_ad(a, 10.0) for a in data["ads"])
    labels, own, topic = [], [], []
    for query in (q for q in data["queries"] if q["category"] != "none"):
        context = AuctionContext(query["query"], "u", {}, ads)
        relevance = score(encoder, context, [parse("No ad here.", ads)])
        for ad in ads:
            labels.append(ad_category(ad) == query["category"])
            own.append(relevance.query[ad.id])
            topic.append(relevance.topic[ad.id])
    own_auc, topic_auc = roc_auc_score(labels, own), roc_auc_score(labels, topic)
    print(f"\ncatalogue AUC: query_similarity {own_auc:.3f}, topic_similarity {topic_auc:.3f} ({len(labels)} pairs)")
    assert topic_auc >= 0.95
    by_title = {ad.title: ad.id for ad in ads}
    steak = AuctionContext("What pans are best for searing steak at home?", "u", {}, ads)
    relevance = score(encoder, steak, [parse("No ad here.", ads)])
    pans = relevance.topic[by_title["Copper Pan Set 10-Piece"]]
    for other in ("SteamLine Espresso Machine", "SteadyVest Robo-Advisor", "RowWave Home Rower"):
        assert pans > relevance.topic[by_title[other]] + 0.1, other


def test_native_similarity_tells_a_woven_ad_from_a_bolted_on_one(encoder: Encoder) -> None:
    """``native_similarity``: the words around the marker against the query (the ad itself left out)."""
    ads = tuple(catalog_ad(a, 10.0) for a in catalog()["ads"] if a["title"] == "Copper Pan Set 10-Piece")
    question = "What pans are best for searing steak at home?"
    woven = parse(f"For a hard sear on steak use a heavy pan that holds heat, like {ads[0].marker}.", ads)
    bolted = parse(f"Our spring sale ends on Friday, see {ads[0].marker}.", ads)
    relevance = score(encoder, AuctionContext(question, "u", {}, ads), [woven, bolted])
    assert relevance.native[(0, ads[0].id)] > relevance.native[(1, ads[0].id)] + 0.2
