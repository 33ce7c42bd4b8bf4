"""Bundled data: ``catalog.json``, a copy of the team's shared synthetic catalogue (60 ads in 12 categories with
typical bid ranges, 24 user profiles, 41 queries) for demos, tests, load tests and training contexts — and the one
rule for an ad's category and the one builder of auction request bodies."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from service.mechanism.types import Ad, AuctionContext


@cache
def catalog() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files(__package__).joinpath("catalog.json").read_text("utf-8"))
    return data


@cache
def _catalog_categories() -> dict[str, str]:
    return {ad["id"]: ad["category"] for ad in catalog()["ads"]}


@cache
def _query_categories() -> dict[str, str]:
    return {q["query"]: q["category"] for q in catalog()["queries"]}


def query_category(query: str) -> str | None:
    """The catalogue's category of one of its questions (``none``: no ad fits); None for any other question."""
    return _query_categories().get(query)


def ad_category(ad: Ad) -> str:
    """The ad's category: as its request states it, else the catalogue's for a catalogue ad; for any other ad the
    first segment of its landing-page path
    (the catalogue's URLs follow that rule too: ``https://example.com/<category>/<slug>``), else its own id."""
    if ad.category:
        return ad.category
    known = _catalog_categories().get(ad.id)
    if known is not None:
        return known
    segments = [s for s in urlsplit(ad.url).path.split("/") if s]
    return segments[0] if len(segments) > 1 else ad.id


def catalog_ad(item: dict[str, Any], bid: float) -> Ad:
    return Ad(id=item["id"], title=item["title"], url=item["url"], bid=bid)


def profile_of(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A catalogue profile as (user id, profile without the id)."""
    return item["id"], {k: v for k, v in item.items() if k != "id"}


def request_body(context: AuctionContext, **options: Any) -> dict[str, Any]:
    """The auction API's request body for a context (advertiser fields only where they differ from a UM's)."""
    ads = []
    for ad in context.ads:
        body: dict[str, Any] = {"id": ad.id, "title": ad.title, "url": ad.url, "bid": ad.bid}
        if ad.advertiser_id is not None or ad.advertiser_kind.value != "UM":
            body["advertiser"] = {
                "id": ad.advertiser_id or ad.id,
                "kind": ad.advertiser_kind.value,
                "target_roi": ad.target_roi,
            }
        ads.append(body)
    return {
        "query": context.query,
        "user": {"id": context.user_id, "profile": dict(context.profile)},
        "ads": ads,
        "options": options,
    }


def catalog_context(query_index: int, n_ads: int = 8, bid: str = "high") -> AuctionContext:
    """A deterministic catalogue context: query and profile by index, the query's own ads first, then others
    (beyond the 60 catalogue ads, variants with their own ids and titles); bids at the top (``high``) or bottom
    (``low``) of each ad's typical range."""
    data = catalog()
    query = data["queries"][query_index % len(data["queries"])]
    user_id, profile = profile_of(data["profiles"][query_index % len(data["profiles"])])
    pool = [a for a in data["ads"] if a["category"] == query["category"]]
    pool += [a for a in data["ads"] if a["category"] != query["category"]]
    ads = []
    for j in range(n_ads):
        item = pool[j % len(pool)]
        value = float(item["typical_bid"][1 if bid == "high" else 0])
        if j < len(pool):
            ads.append(catalog_ad(item, value))
        else:
            copy = j // len(pool) + 1
            ads.append(Ad(id=f"{item['id']}-{j}", title=f"{item['title']} {copy}", url=item["url"], bid=value))
    return AuctionContext(query=query["query"], user_id=user_id, profile=profile, ads=tuple(ads))
