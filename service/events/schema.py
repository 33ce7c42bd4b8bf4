"""What an impression and a click event hold: everything offline training needs (the IRPO loop re-fits the CTR
model on clicks and builds preference pairs from all K samples). Pure builders, no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from service.clicks.tokens import ClickTarget
from service.engine.base import Generation, SamplingRequest
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
) -> dict[str, Any]:
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
                "itctr": ad.itctr.mean,
                "itctr_stderr": ad.itctr.stderr,
                "exposure_rate": ad.itctr.exposure_rate,
                "expected_payment": ad.payment.expected_payment,
                "price_per_click": ad.payment.price_per_click,
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
