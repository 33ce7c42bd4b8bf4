"""From a validated request to an auction ready for the engine: domain context, sampling parameters, the
deterministic prompt and its token budget."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from service.auctions.mapping import to_context
from service.auctions.schemas import AuctionRequest
from service.engine.base import Engine, SamplingRequest
from service.errors import InvalidRequest
from service.mechanism.auction import MechanismRule
from service.mechanism.exposure import marker_regex
from service.mechanism.payments import PaymentRule
from service.mechanism.prompt import Prompt, build_prompt, format_or_default, placeable
from service.mechanism.relevance import USER_PRIOR_RATE
from service.mechanism.selection import Selection, SelectionRule
from service.mechanism.types import AuctionContext
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class Prepared:
    """An auction ready for the engine."""

    auction_id: str
    context: AuctionContext
    sampling: SamplingRequest
    prompt: Prompt
    token_ids: list[int]
    seeded: bool  # the caller chose the seed (the sample cache keys on it then)
    rule: MechanismRule
    bids_in_prompt: bool
    relevance_floor: bool  # the grammar let the model write only the ads that fit the question
    curve_bids: tuple[float, ...] | None
    user_click_rate: float  # the user's history before this auction (controls' snapshot): a CTR feature


def sampling_for(request: AuctionRequest, settings: Settings) -> SamplingRequest:
    options = request.options
    return SamplingRequest(
        n=options.samples or settings.default_samples,
        max_tokens=options.max_tokens or settings.default_max_tokens,
        temperature=options.temperature or settings.default_temperature,
        top_p=options.top_p or settings.default_top_p,
        # Always seeded, so that every logged auction can be replayed exactly.
        seed=options.seed if options.seed is not None else secrets.randbelow(2**31),
    )


def relevance_floor(request: AuctionRequest, settings: Settings) -> bool:
    """Whether the request asks for the relevance floor (its option over the deployment's setting); it applies
    under the marker grammar only, which is what enforces it."""
    option = request.options.relevance_floor
    return settings.relevance_floor if option is None else option


def rule_for(request: AuctionRequest, settings: Settings) -> MechanismRule:
    """The request's mechanism options over the deployment's defaults."""
    options = request.options
    return MechanismRule(
        SelectionRule(
            Selection(options.selection or settings.selection),
            options.selection_temperature or settings.selection_temperature,
        ),
        PaymentRule(options.payment_rule or settings.payment_rule),
    )


def prepare(
    request: AuctionRequest,
    auction_id: str,
    engine: Engine,
    settings: Settings,
    context: AuctionContext | None = None,
    user_click_rate: float = USER_PRIOR_RATE,
    fit: Mapping[str, float] | None = None,
) -> Prepared:
    """``context``: the request's, with only its eligible ads (the controls ran first); ``fit``: each ad's fit to
    the question, for a prompt format that ranks by it (``AuctionService.prompt_fit``); raises
    ``InvalidRequest`` when the prompt does not fit the model with ``max_tokens`` to spare."""
    context = context or to_context(request)
    sampling = sampling_for(request, settings)
    constrain = (
        settings.constrain_markers if request.options.constrain_markers is None else request.options.constrain_markers
    )
    floor = constrain and relevance_floor(request, settings) and fit is not None
    if constrain:  # over the eligible candidates only: an ad the controls removed cannot be written
        sampling = dataclasses.replace(sampling, regex=marker_regex(placeable(context.ads, fit, floor)))
    bids_in_prompt = (
        settings.bids_in_prompt if request.options.bids_in_prompt is None else request.options.bids_in_prompt
    )
    fmt = format_or_default(settings.prompt_format)  # resolved from the served version (service.models.resolve)
    prompt = build_prompt(context, engine.tokenizer.render_chat, bids=bids_in_prompt, fmt=fmt, fit=fit)
    token_ids = engine.tokenizer.encode(prompt.text)
    budget = engine.max_model_len - sampling.max_tokens
    if len(token_ids) > budget:
        raise InvalidRequest(
            f"the prompt has {len(token_ids)} tokens; with max_tokens={sampling.max_tokens} the model "
            f"allows {budget}: send fewer or shorter ads, or a shorter query"
        )
    return Prepared(
        auction_id=auction_id,
        context=context,
        sampling=sampling,
        prompt=prompt,
        token_ids=token_ids,
        seeded=request.options.seed is not None,
        rule=rule_for(request, settings),
        bids_in_prompt=bids_in_prompt,
        relevance_floor=floor,
        curve_bids=tuple(request.options.allocation_curve) if request.options.allocation_curve is not None else None,
        user_click_rate=user_click_rate,
    )
