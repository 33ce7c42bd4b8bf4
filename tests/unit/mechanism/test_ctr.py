from __future__ import annotations

import math

import pytest

from service.mechanism.ctr import DEFAULT_CTR_MODEL, LogisticCTRModel, ad_words, ctr_row, features
from service.mechanism.exposure import parse
from service.mechanism.types import AuctionContext


def test_ad_words_use_title_and_url_path(context: AuctionContext) -> None:
    assert ad_words(context.ads[0]) == {"arch", "stab", "runn"}
    assert ad_words(context.ads[2]) == {"brew", "burr", "grin", "coff"}


def test_features_hand_checked(context: AuctionContext) -> None:
    text = "@ArchGuard Stability Runner@[Ad-7001] is stable; for coffee, @BrewMaster Burr Grinder@[Ad-9001]."
    exposure = parse(text, context.ads)
    # Ad-7001 shares "runn" (running) with the query: 1 of its 3 words; nothing with the profile.
    assert features(context, context.ads[0], exposure) == (1 / 3, 0.0, 0.0, 1.0)
    # Ad-9001 shares "coff" (coffee) with the profile's interests: 1 of its 4 words.
    assert features(context, context.ads[2], exposure) == (0.0, 0.25, text.index("@Brew") / len(text), 1.0)
    with pytest.raises(ValueError, match="not exposed"):
        features(context, context.ads[1], exposure)


def test_default_model_hand_checked(context: AuctionContext) -> None:
    exposure = parse("@ArchGuard Stability Runner@[Ad-7001] helps.", context.ads)
    row = ctr_row(context, exposure, DEFAULT_CTR_MODEL)
    assert row[0] == pytest.approx(1 / (1 + math.exp(3.2 - 2.5 / 3)))
    assert row[0] == pytest.approx(0.0858, abs=1e-4)
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
    assert model.predict((0.0, 0.0, 0.0, 0.0)) == pytest.approx(0.5)
    assert model.predict((0.9, 0.9, 1.0, 4.0)) == pytest.approx(0.75)
