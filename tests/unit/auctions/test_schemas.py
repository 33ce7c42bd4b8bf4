from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from service.auctions.mapping import to_context
from service.auctions.schemas import AuctionRequest
from service.mechanism.types import AdvertiserKind
from service.settings import Bounds


def body(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "query": "best running shoe?",
        "user": {"id": "u1", "profile": {"interests": ["running"]}},
        "ads": [
            {"id": "Ad-1", "title": "Runner One", "url": "https://example.com/r1", "bid": 10},
            {
                "id": "Ad-2",
                "title": "Runner Two",
                "url": "https://example.com/r2",
                "bid": 20.456,
                "advertiser": {"id": "adv2", "kind": "VM", "target_roi": 1.5},
            },
        ],
    }
    request.update(overrides)
    return request


def test_valid_request_maps_to_context() -> None:
    context = to_context(AuctionRequest.model_validate(body()))
    assert context.query == "best running shoe?"
    assert [a.id for a in context.ads] == ["Ad-1", "Ad-2"]
    assert context.ads[1].bid == 20.46  # cents
    assert context.ads[1].advertiser_kind is AdvertiserKind.VM
    assert context.ads[1].target_roi == 1.5
    assert context.ads[0].advertiser_kind is AdvertiserKind.UM


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"query": "   "}, "query"),
        ({"query": "x" * (Bounds.MAX_QUERY_CHARS + 1)}, "query"),
        ({"ads": [{"id": "A", "title": "T", "url": "https://e.com", "bid": 1}] * 2}, "duplicate ad id"),
        ({"ads": [{"id": "A", "title": "T@x", "url": "https://e.com", "bid": 1}]}, "title"),
        ({"ads": [{"id": "A", "title": "T [1]", "url": "https://e.com", "bid": 1}]}, "title"),
        ({"ads": [{"id": "A b", "title": "T", "url": "https://e.com", "bid": 1}]}, "id"),
        ({"ads": [{"id": "A", "title": "T", "url": "javascript:alert(1)", "bid": 1}]}, "url"),
        ({"ads": [{"id": "A", "title": "T", "url": "https://e.com", "bid": float("nan")}]}, "bid"),
        ({"options": {"samples": Bounds.MAX_SAMPLES + 1}}, "samples"),
        ({"options": {"temperature": 0}}, "temperature"),
        ({"user": {"id": "u", "profile": {"bio": "x" * Bounds.MAX_PROFILE_CHARS}}}, "profile"),
        ({"extra": 1}, "extra"),
        ({"query": "hi \ud800 there"}, "(?i)unicode"),
        ({"user": {"id": "u", "profile": {"k": "\udc00"}}}, "Unicode"),  # found by fuzzing: a 500
    ],
)
def test_invalid_requests_are_refused(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        AuctionRequest.model_validate(body(**overrides))


def test_too_many_ads() -> None:
    ads = [{"id": f"A{i}", "title": f"T{i}", "url": "https://e.com", "bid": 1} for i in range(Bounds.MAX_ADS + 1)]
    with pytest.raises(ValidationError, match="ads"):
        AuctionRequest.model_validate(body(ads=ads))


@pytest.mark.parametrize(
    ("where", "value"),
    [("bid", False), ("bid", "10"), ("samples", True), ("temperature", "0.7"), ("seed", True)],
)
def test_numbers_are_numbers_not_booleans_or_strings(where: str, value: object) -> None:
    """JSON true/false and numeric strings are refused, not coerced (the schema fuzzer sent `"bid": false` and the
    auction ran at bid 0); integers still count as floats."""
    request: dict[str, Any] = {
        "query": "q",
        "user": {"id": "u"},
        "ads": [{"id": "A-1", "title": "T", "url": "https://example.com/t", "bid": 10}],
    }
    if where == "bid":
        request["ads"][0]["bid"] = value
    else:
        request["options"] = {where: value}
    with pytest.raises(ValidationError):
        AuctionRequest.model_validate(request)
    assert (
        AuctionRequest.model_validate({**request, "ads": [{**request["ads"][0], "bid": 10}], "options": {}}).ads[0].bid
        == 10
    )
