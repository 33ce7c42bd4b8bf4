"""The one translation of each shape: request → context, outcome → response, auction → impression event."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

from service.auctions.schemas import AdResult, AuctionRequest, AuctionResponse, IneligibleAd
from service.engine.base import Generation, SamplingRequest
from service.mechanism import exposure as exposure_mod
from service.mechanism.auction import AuctionOutcome
from service.mechanism.eligibility import Reason
from service.mechanism.exposure import SPONSORED_TEMPLATE
from service.mechanism.prompt import Prompt
from service.mechanism.relevance import to_dict as relevance_dict
from service.mechanism.types import Ad, AdvertiserKind, AuctionContext

SCHEMA_VERSION = 1


def new_auction_id() -> str:
    return uuid.uuid4().hex


def to_context(request: AuctionRequest) -> AuctionContext:
    return AuctionContext(
        query=request.query,
        user_id=request.user.id,
        profile=request.user.profile,
        ads=tuple(
            Ad(
                id=ad.id,
                title=ad.title,
                url=str(ad.url),
                bid=ad.bid,
                advertiser_id=ad.advertiser.id if ad.advertiser else None,
                advertiser_kind=AdvertiserKind(ad.advertiser.kind) if ad.advertiser else AdvertiserKind.UM,
                target_roi=ad.advertiser.target_roi if ad.advertiser else 1.0,
                advertiser_name=ad.advertiser.name if ad.advertiser else None,
                category=ad.category,
            )
            for ad in request.ads
        ),
    )


def to_response(
    *,
    auction_id: str,
    model: str,
    ctr_model: str,
    prompt: Prompt,
    prompt_tokens: int,
    sampling: SamplingRequest,
    generation: Generation,
    outcome: AuctionOutcome,
    text: str,
    click_url: dict[str, str],
    timings_ms: dict[str, float],
    cache_hit: bool,
    return_samples: bool,
    bids_in_prompt: bool,
    ineligible: Sequence[tuple[Ad, Reason]] = (),
    relevance_floor: bool = False,
    sensitive_topic: str | None = None,
    context: AuctionContext | None = None,
) -> AuctionResponse:
    """``click_url``: the signed link of each ad shown in the served answer."""
    served = outcome.served
    ads_by_id = {ad.id: ad for ad in context.ads} if context is not None else {}
    return AuctionResponse(
        auction_id=auction_id,
        text=text,
        raw_text=served.text,
        served_index=outcome.served_index,
        samples=len(generation.samples),
        model=model,
        ctr_model=ctr_model,
        prompt_hash=prompt.hash,
        prompt_tokens=prompt_tokens,
        seed=sampling.seed,
        cache_hit=cache_hit,
        ads=[
            AdResult(
                id=ad.ad_id,
                exposed=ad.exposed_in_served,
                itctr=ad.itctr.mean,
                itctr_stderr=ad.itctr.stderr,
                itctr_upper=ad.itctr.upper,
                exposure_rate=ad.itctr.exposure_rate,
                expected_payment=ad.payment.expected_payment,
                price_per_click=ad.payment.price_per_click,
                implied_value_per_click=ad.payment.implied_value_per_click,
                click_url=click_url.get(ad.ad_id) if ad.exposed_in_served else None,
                allocation_curve=list(ad.curve) if ad.curve is not None else None,
                sponsored=True,
                advertiser=_display_name(ads_by_id[ad.ad_id]) if ad.ad_id in ads_by_id else None,
                why=why(ads_by_id[ad.ad_id], outcome) if ad.ad_id in ads_by_id else None,
            )
            for ad in outcome.ads
        ],
        ineligible=[IneligibleAd(id=ad.id, reason=reason.value) for ad, reason in ineligible],
        sensitive_topic=sensitive_topic,
        format_errors=len(served.errors),
        mechanism={
            **outcome.rule.describe(),
            "bids_in_prompt": bids_in_prompt,
            "marker_grammar": sampling.regex is not None,
            "relevance_floor": relevance_floor,
        },
        served_probability=outcome.probabilities[outcome.served_index],
        probabilities=list(outcome.probabilities),
        objective=outcome.objectives[outcome.served_index],
        timings_ms=timings_ms,
        sample_texts=[s.text for s in generation.samples] if return_samples else None,
        sample_finish_reasons=[s.finish_reason for s in generation.samples] if return_samples else None,
    )


def _display_name(ad: Ad) -> str:
    return ad.advertiser_name or ad.advertiser_id or ad.id


RELATED = 0.15  # a cosine above which the encoder calls an ad related to a text (catalogue: relevant median 0.19)


def why(ad: Ad, outcome: AuctionOutcome) -> str:
    """The main parameters that chose the ad, in words (EU DSA Art. 26(1)(d)): what it matched, that an auction on
    bid × predicted clicks placed it, and which profile data it used (never special-category data: left out)."""
    relevance = outcome.relevance
    matched = []
    if relevance.query.get(ad.id, 0.0) >= RELATED:
        matched.append("your question")
    if relevance.profile.get(ad.id, 0.0) >= RELATED:
        matched.append("your stated interests")
    basis = f"It matched {' and '.join(matched)}" if matched else "It was a candidate for this answer"
    return (
        f"{basis}; an auction on the advertiser's bid and the predicted chance of a click placed it. "
        "No special-category profile data (health, religion, politics, …) was used."
    )


def disclosure(context: AuctionContext, outcome: AuctionOutcome, template: str) -> list[dict[str, Any]]:
    """What the served answer disclosed, per shown ad: label template, advertiser, why."""
    by_id = {ad.id: ad for ad in context.ads}
    return [
        {
            "ad_id": ad_id,
            "label_template": template,
            "advertiser": _display_name(by_id[ad_id]),
            "why": why(by_id[ad_id], outcome),
        }
        for ad_id in outcome.served.exposed
    ]


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
    bids_in_prompt: bool = True,
    ineligible: Sequence[tuple[Ad, Reason]] = (),
    relevance_floor: bool = False,
    sensitive_topic: str | None = None,
    link_template: str = SPONSORED_TEMPLATE,
) -> dict[str, Any]:
    """Everything offline training needs (the IRPO loop re-fits the CTR model on clicks and builds preference
    pairs from all K samples). ``shown_text``: set when a streamed answer was cut short (client gone): what the
    user saw. Such an impression keeps its partial samples but is not priced: no ITCTR, no expected payment; ads
    whose links were shown keep their price per click, since those links can still be clicked."""
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
        # What a ranked prompt format (p3) ranked the candidates by: the prompt is rebuilt from it for DPO pairs.
        **({"prompt_fit": dict(prompt.fit)} if prompt.fit else {}),
        **context.to_dict(),
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
        # The serving propensities: CTR refits weight each logged click by 1/q of the served sample.
        "mechanism": {
            **outcome.rule.describe(),
            "bids_in_prompt": bids_in_prompt,
            "marker_grammar": sampling.regex is not None,
            "relevance_floor": relevance_floor,
        },
        "probabilities": list(outcome.probabilities),
        "relevance": relevance_dict(outcome.relevance),
        "ineligible": [{"ad_id": ad.id, "reason": reason.value} for ad, reason in ineligible],
        "sensitive_topic": sensitive_topic,
        "disclosure": disclosure(context, outcome, link_template),
        "results": [
            {
                "ad_id": ad.ad_id,
                "itctr": None if cut_short else ad.itctr.mean,
                "itctr_stderr": None if cut_short else ad.itctr.stderr,
                "exposure_rate": None if cut_short else ad.itctr.exposure_rate,
                "itctr_upper": None if cut_short else ad.itctr.upper,
                "curve": list(ad.curve) if ad.curve is not None and not cut_short else None,
                "expected_payment": 0.0 if cut_short else ad.payment.expected_payment,
                "price_per_click": ad.payment.price_per_click if not cut_short or ad.ad_id in shown_ads else 0.0,
            }
            for ad in outcome.ads
        ],
    }
