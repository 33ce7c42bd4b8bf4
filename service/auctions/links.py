"""Signed click links of one auction: one URL per ad (the same in the text and in ``ads[]``), carrying the price
per click that a click on it is billed."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from service.clicks.tokens import ClickSigner, ClickTarget
from service.mechanism.types import AuctionContext

Link = Callable[[str], str]


def link_maker(signer: ClickSigner, auction_id: str, context: AuctionContext, prices: Mapping[str, float]) -> Link:
    """``prices``: ad id → price per click, fixed before anything is shown."""
    ads = {ad.id: ad for ad in context.ads}
    made: dict[str, str] = {}

    def link(ad_id: str) -> str:
        if ad_id not in made:
            ad = ads[ad_id]
            made[ad_id] = signer.url(ClickTarget(auction_id, ad_id, ad.url, prices[ad_id], ad.advertiser_id))
        return made[ad_id]

    return link
