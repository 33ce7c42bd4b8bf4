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
    advertiser_name: str | None = None  # display name, disclosed with the ad
    category: str | None = None  # as the request states it; None: the landing URL's rule

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

    def to_dict(self) -> dict[str, Any]:
        """The context as logged in an impression (and read back by ``from_dict``): the one translation."""
        return {
            "query": self.query,
            "user": {"id": self.user_id, "profile": dict(self.profile)},
            "ads": [
                {
                    "id": ad.id,
                    "title": ad.title,
                    "url": ad.url,
                    "bid": ad.bid,
                    "advertiser_id": ad.advertiser_id,
                    "advertiser_kind": ad.advertiser_kind.value,
                    "target_roi": ad.target_roi,
                    "advertiser_name": ad.advertiser_name,
                    "category": ad.category,
                }
                for ad in self.ads
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuctionContext:
        """A context from ``to_dict``'s shape (an impression event or a request body: missing advertiser fields
        take the defaults of a utility maximiser)."""
        return cls(
            query=data["query"],
            user_id=data["user"]["id"],
            profile=data["user"].get("profile") or {},
            ads=tuple(
                Ad(
                    id=a["id"],
                    title=a["title"],
                    url=a["url"],
                    bid=float(a["bid"]),
                    advertiser_id=a.get("advertiser_id"),
                    advertiser_kind=AdvertiserKind(a.get("advertiser_kind", "UM")),
                    target_roi=float(a.get("target_roi", 1.0)),
                    advertiser_name=a.get("advertiser_name"),
                    category=a.get("category"),
                )
                for a in data["ads"]
            ),
        )
