from __future__ import annotations

import math

import pytest

from service.mechanism.ctr import DEFAULT_CTR_MODEL, FEATURE_NAMES, LogisticCTRModel, ctr_row, features
from service.mechanism.exposure import parse
from service.mechanism.relevance import Relevance, ad_text, profile_text, window
from service.mechanism.types import AuctionContext


def test_ad_text_uses_title_and_url_path(context: AuctionContext) -> None:
    assert ad_text(context.ads[0]) == "ArchGuard Stability Runner (running archguard stability runner)"
    assert profile_text({"age": 38, "interests": ["audio", "coffee"]}) == "age 38 audio coffee"


def test_features_read_the_similarities_of_their_sample(context: AuctionContext) -> None:
    text = "@ArchGuard Stability Runner@[Ad-7001] is stable; for coffee, @BrewMaster Burr Grinder@[Ad-9001]."
    exposure = parse(text, context.ads)
    relevance = Relevance(
        query={"Ad-7001": 0.4, "Ad-9001": 0.05},
        profile={"Ad-7001": 0.1, "Ad-9001": 0.3},
        around={(2, "Ad-7001"): 0.5, (2, "Ad-9001"): 0.2, (0, "Ad-7001"): 0.9},
        topic={"Ad-7001": 0.35, "Ad-9001": 0.01},
        native={(2, "Ad-7001"): 0.6, (2, "Ad-9001"): 0.15, (0, "Ad-7001"): 0.7},
        user=0.3,
    )
    assert features(context, context.ads[0], exposure, relevance, sample=2) == (
        0.4,
        0.1,
        0.5,
        0.0,
        1.0,
        0.35,
        0.6,
        0.3,
    )
    assert features(context, context.ads[2], exposure, relevance, sample=2) == (
        0.05,
        0.3,
        0.2,
        text.index("@Brew") / len(text),
        1.0,
        0.01,
        0.15,
        0.3,
    )
    with pytest.raises(ValueError, match="not exposed"):
        features(context, context.ads[1], exposure, relevance)


def test_the_window_is_the_text_around_the_marker_without_markers(context: AuctionContext) -> None:
    exposure = parse("Stability matters. @ArchGuard Stability Runner@[Ad-7001] supports flat feet.", context.ads)
    assert window(exposure, "Ad-7001") == "Stability matters. supports flat feet."


def test_the_window_leaves_out_the_ads_own_title_in_plain_words(context: AuctionContext) -> None:
    # The title written next to its marker, and again as a second marker, is the ad, not the answer around it;
    # another ad's title stays (it is what the user reads next to this one).
    text = (
        "archguard stability runner: @ArchGuard Stability Runner@[Ad-7001] supports flat feet, "
        "like @CloudStep Orthotic Insoles@[Ad-7002] and @ArchGuard Stability Runner@[Ad-7001]."
    )
    exposure = parse(text, context.ads)
    assert window(exposure, "Ad-7001") == ": supports flat feet, like CloudStep Orthotic Insoles and ."
    assert "ArchGuard Stability Runner" in window(exposure, "Ad-7002")


def test_default_model_hand_checked(context: AuctionContext) -> None:
    exposure = parse("@ArchGuard Stability Runner@[Ad-7001] helps.", context.ads)
    relevance = Relevance(query={"Ad-7001": 0.2}, profile={"Ad-7001": 0.0}, around={(0, "Ad-7001"): 0.25})
    row = ctr_row(context, exposure, DEFAULT_CTR_MODEL, relevance)
    assert row[0] == pytest.approx(1 / (1 + math.exp(4.0 - 8.0 * 0.2 - 2.0 * 0.25)))
    assert row[0] == pytest.approx(0.130, abs=1e-3)
    assert row[1:] == (0.0, 0.0)


def test_more_ads_and_later_position_lower_ctr(context: AuctionContext) -> None:
    alone = parse("@ArchGuard Stability Runner@[Ad-7001] first.", context.ads)
    crowded = parse("@ArchGuard Stability Runner@[Ad-7001], @CloudStep Orthotic Insoles@[Ad-7002].", context.ads)
    late = parse("A long answer about shoes and arches. " * 5 + "@ArchGuard Stability Runner@[Ad-7001]", context.ads)
    base = ctr_row(context, alone, DEFAULT_CTR_MODEL)[0]
    assert ctr_row(context, crowded, DEFAULT_CTR_MODEL)[0] < base
    assert ctr_row(context, late, DEFAULT_CTR_MODEL)[0] < base


def test_fitted_coefficients_replace_the_default() -> None:
    model = LogisticCTRModel(version="fit-1", intercept=0.0, coefficients={"position": math.log(3)})
    assert len(FEATURE_NAMES) == 8
    assert model.predict((0.0,) * 8) == pytest.approx(0.5)
    assert model.predict((0.9, 0.9, 0.9, 1.0, 4.0, 0.9, 0.9, 0.2)) == pytest.approx(0.75)
