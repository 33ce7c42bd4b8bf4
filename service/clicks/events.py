"""What a click event holds, and the key that makes a click count once per auction and ad. Pure builders."""

from __future__ import annotations

from typing import Any

from service.clicks.tokens import ClickTarget

SCHEMA_VERSION = 1


def click_event(
    *,
    target: ClickTarget,
    timestamp: float,
    request_id: str | None,
    user_agent: str,
    billed: bool | None = None,
    billing: str | None = None,
) -> dict[str, Any]:
    """``billed``/``billing``: whether the advertiser's budget paid for it (billed, duplicate, budget_exhausted,
    unavailable); None where no budget check ran."""
    return {
        "schema": SCHEMA_VERSION,
        "auction_id": target.auction_id,
        "ad_id": target.ad_id,
        "advertiser_id": target.payer,
        "price_per_click": target.price,
        "billed": billed,
        "billing": billing,
        "ts": timestamp,
        "request_id": request_id,
        "user_agent": user_agent[:256],
    }


def click_once_key(target: ClickTarget) -> str:
    """A click counts once per auction and ad."""
    return f"{target.auction_id}:{target.ad_id}"
