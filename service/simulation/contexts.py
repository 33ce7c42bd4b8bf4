"""Auction contexts drawn from the bundled catalogue (pure, seeded): what the IRPO loop, the warm start and the
audit feed the model.

Queries are split once: the first two queries of every category (and four of the five off-topic ones) are for
training, the third (and the last off-topic one) are held out for the audit, so the audit asks questions the
model never trained on. A context holds ``n_relevant`` ads of the query's category and ``n_other`` ads of other
categories, in random order, each with a fresh bid drawn uniformly from 1–100 (rounded to cents).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from service.data import ad_category, catalog, profile_of, request_body
from service.mechanism.types import Ad, AdvertiserKind, AuctionContext

Split = Literal["train", "heldout"]
NO_AD_CATEGORY = "none"
BID_RANGE = (1.0, 100.0)


@dataclass(frozen=True, slots=True)
class CatalogContext:
    """A context and what the catalogue knows about it (the query's category: the ground truth of relevance)."""

    query_id: str
    category: str
    context: AuctionContext

    @property
    def relevant_ids(self) -> frozenset[str]:
        return frozenset(ad.id for ad in self.context.ads if ad_category(ad) == self.category)

    def request(self, **options: Any) -> dict[str, Any]:
        """The auction API's request body for this context."""
        return request_body(self.context, **options)


def split_queries(split: Split, data: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    queries = (data or catalog())["queries"]
    seen: dict[str, int] = {}
    out = []
    for query in queries:
        rank = seen[query["category"]] = seen.get(query["category"], 0) + 1
        last = sum(q["category"] == query["category"] for q in queries)
        heldout = rank == last
        if heldout == (split == "heldout"):
            out.append(query)
    return out


def _ads(data: Mapping[str, Any]) -> list[Ad]:
    return [Ad(id=a["id"], title=a["title"], url=a["url"], bid=1.0) for a in data["ads"]]


def random_bid(rng: random.Random) -> float:
    return round(rng.uniform(*BID_RANGE), 2)


def draw_context(
    rng: random.Random,
    split: Split,
    *,
    n_relevant: int = 2,
    n_other: int = 2,
    data: Mapping[str, Any] | None = None,
) -> CatalogContext:
    data = data or catalog()
    query = rng.choice(split_queries(split, data))
    return context_for(rng, query, n_relevant=n_relevant, n_other=n_other, data=data)


def context_for(
    rng: random.Random,
    query: Mapping[str, Any],
    *,
    n_relevant: int = 2,
    n_other: int = 2,
    data: Mapping[str, Any] | None = None,
) -> CatalogContext:
    """A context for one question (``{"id", "category", "query"}``): the catalogue's ads and a profile, fresh bids."""
    data = data or catalog()
    ads = _ads(data)
    relevant = [a for a in ads if ad_category(a) == query["category"]]
    others = [a for a in ads if ad_category(a) != query["category"]]
    picked = rng.sample(relevant, min(n_relevant, len(relevant)))  # none for off-topic queries
    chosen = picked + rng.sample(others, n_relevant + n_other - len(picked))
    rng.shuffle(chosen)
    user_id, profile = profile_of(rng.choice(data["profiles"]))
    context = AuctionContext(
        query=query["query"],
        user_id=user_id,
        profile=profile,
        ads=tuple(Ad(id=a.id, title=a.title, url=a.url, bid=random_bid(rng)) for a in chosen),
    )
    return CatalogContext(query["id"], query["category"], context)


def draw_contexts(seed: int, n: int, split: Split, **kwargs: Any) -> list[CatalogContext]:
    rng = random.Random(seed)
    return [draw_context(rng, split, **kwargs) for _ in range(n)]


def with_bid(item: CatalogContext, ad_id: str, bid: float) -> CatalogContext:
    ads = tuple(dataclasses.replace(a, bid=bid) if a.id == ad_id else a for a in item.context.ads)
    return CatalogContext(item.query_id, item.category, dataclasses.replace(item.context, ads=ads))


def with_advertiser(item: CatalogContext, ad_id: str, kind: AdvertiserKind, target_roi: float) -> CatalogContext:
    """``ad_id`` run by an advertiser of ``kind`` (a VM bids v/τ: the bid stays, its implied value is τ·bid)."""
    ads = tuple(
        dataclasses.replace(a, advertiser_id=f"adv-{a.id}", advertiser_kind=kind, target_roi=target_roi)
        if a.id == ad_id
        else a
        for a in item.context.ads
    )
    return CatalogContext(item.query_id, item.category, dataclasses.replace(item.context, ads=ads))


def sweep_contexts(seed: int, n: int, data: Mapping[str, Any] | None = None) -> list[tuple[CatalogContext, str]]:
    """Held-out contexts with two relevant ads, and the id of the one whose bid the audit sweeps (the other
    relevant ad keeps a fixed bid of 50, so the sweep crosses it)."""
    rng = random.Random(seed)
    out: list[tuple[CatalogContext, str]] = []
    while len(out) < n:
        item = draw_context(rng, "heldout", data=data)
        if item.category == NO_AD_CATEGORY:
            continue
        swept, fixed = sorted(item.relevant_ids)[:2]
        if rng.random() < 0.5:
            swept, fixed = fixed, swept
        out.append((with_bid(item, fixed, 50.0), swept))
    return out
