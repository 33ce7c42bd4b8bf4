"""What an impression and a click event hold: everything offline training needs (the IRPO loop re-fits the CTR
model on clicks and builds preference pairs from all K samples). Pure builders, no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from service.clicks.tokens import ClickTarget
from service.engine.base import Generation, SamplingRequest
from service.mechanism import exposure as exposure_mod
from service.mechanism.auction import AuctionOutcome
from service.mechanism.prompt import Prompt
from service.mechanism.types import AuctionContext

SCHEMA_VERSION = 1


def impression_event(
    *,
    auction_id: str,
    timestamp: float,
    request_id: str | None,
    model: str,
    ctr_model_version: str,
    context: AuctionContext,
    prompt: Prompt,
    sampling: SamplingRequest,
    generation: Generation,
    outcome: AuctionOutcome,
    cache_hit: bool,
    shown_text: str | None = None,
) -> dict[str, Any]:
    """``shown_text``: set when a streamed answer was cut short (client gone): what the user saw. Such an
    impression keeps its partial samples but is not priced: no ITCTR, no expected payment; ads whose links
    were shown keep their price per click, since those links can still be clicked."""
    cut_short = shown_text is not None
    shown_ads = set(exposure_mod.parse(shown_text, context.ads).exposed) if shown_text is not None else set()
    return {
        "schema": SCHEMA_VERSION,
        "auction_id": auction_id,
        "ts": timestamp,
        "request_id": request_id,
        "model": model,
        "ctr_model": ctr_model_version,
        "prompt_version": prompt.version,
        "prompt_hash": prompt.hash,
        "query": context.query,
        "user": {"id": context.user_id, "profile": dict(context.profile)},
        "ads": [{**dataclasses.asdict(ad), "advertiser_kind": ad.advertiser_kind.value} for ad in context.ads],
        "sampling": dataclasses.asdict(sampling),
        "cache_hit": cache_hit,
        "cut_short": cut_short,
        "shown_text": shown_text,
        "prompt_tokens": generation.prompt_tokens,
        "samples": [
            {
                "text": sample.text,
                "finish_reason": sample.finish_reason,
                "tokens": sample.num_tokens,
                "exposed": list(exposure.exposed),
                "format_errors": len(exposure.errors),
                "objective": objective,
            }
            for sample, exposure, objective in zip(
                generation.samples, outcome.exposures, outcome.objectives, strict=True
            )
        ],
        "served_index": outcome.served_index,
        "served_exposed": list(outcome.served.exposed),
        "results": [
            {
                "ad_id": ad.ad_id,
                "itctr": None if cut_short else ad.itctr.mean,
                "itctr_stderr": None if cut_short else ad.itctr.stderr,
                "exposure_rate": None if cut_short else ad.itctr.exposure_rate,
                "expected_payment": 0.0 if cut_short else ad.payment.expected_payment,
                "price_per_click": ad.payment.price_per_click if not cut_short or ad.ad_id in shown_ads else 0.0,
            }
            for ad in outcome.ads
        ],
    }


def click_event(*, target: ClickTarget, timestamp: float, request_id: str | None, user_agent: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "auction_id": target.auction_id,
        "ad_id": target.ad_id,
        "price_per_click": target.price,
        "ts": timestamp,
        "request_id": request_id,
        "user_agent": user_agent[:256],
    }


def click_once_key(target: ClickTarget) -> str:
    """A click counts once per auction and ad."""
    return f"{target.auction_id}:{target.ad_id}"
