"""Domain types of one auction, free of HTTP and storage concerns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AdvertiserKind(StrEnum):
    """How an advertiser bids (paper §3): utility maximiser or ROI-constrained value maximiser."""

    UM = "UM"
    VM = "VM"


@dataclass(frozen=True, slots=True)
class Ad:
    """One candidate ad with its advertiser's bid (value per click, in currency units)."""

    id: str
    title: str
    url: str
    bid: float
    advertiser_id: str | None = None
    advertiser_kind: AdvertiserKind = AdvertiserKind.UM
    target_roi: float = 1.0

    @property
    def marker(self) -> str:
        """The exact text that exposes this ad in an answer: ``@Ad Title@[Ad ID]``."""
        return f"@{self.title}@[{self.id}]"


@dataclass(frozen=True, slots=True)
class AuctionContext:
    """Everything the allocation rule sees: query ``x``, profile ``h``, ads ``a`` with bids ``b``."""

    query: str
    user_id: str
    profile: Mapping[str, Any] = field(default_factory=dict)
    ads: tuple[Ad, ...] = ()

    def ad(self, ad_id: str) -> Ad | None:
        for ad in self.ads:
            if ad.id == ad_id:
                return ad
        return None
