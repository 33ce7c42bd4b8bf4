"""Orchestration of one auction: prompt → engine (K samples) → mechanism → rendered, priced response.

The I/O lives here (engine call, timing); every decision is delegated to the pure ``service.mechanism`` code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from service.api.protocol import AdResult, AuctionRequest, AuctionResponse
from service.clicks.tokens import ClickSigner, ClickTarget
from service.config import Settings
from service.engine.base import Engine, Generation, SamplingRequest
from service.errors import InvalidRequest, ServiceError
from service.events.log import IMPRESSIONS, EventLog
from service.events.schema import impression_event
from service.mechanism import auction, exposure
from service.mechanism.ctr import CTRModel
from service.mechanism.objective import ObjectiveWeights
from service.mechanism.prompt import build_prompt
from service.mechanism.types import Ad, AdvertiserKind, AuctionContext
from service.observability import log_context, metrics
from service.observability.timing import StageClock
from service.storage.sample_cache import SampleCache, cache_key

logger = logging.getLogger(__name__)


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
            )
            for ad in request.ads
        ),
    )


class AuctionService:
    def __init__(
        self,
        engine: Engine,
        ctr_model: CTRModel,
        weights: ObjectiveWeights,
        click_signer: ClickSigner,
        events: EventLog,
        cache: SampleCache | None,
        settings: Settings,
    ) -> None:
        self._engine = engine
        self._ctr_model = ctr_model
        self._weights = weights
        self._clicks = click_signer
        self._events = events
        self._cache = cache
        self._settings = settings
        self._background: set[asyncio.Task[None]] = set()

    @property
    def ctr_model_version(self) -> str:
        return self._ctr_model.version

    def sampling_for(self, request: AuctionRequest) -> SamplingRequest:
        options, settings = request.options, self._settings
        return SamplingRequest(
            n=options.samples or settings.default_samples,
            max_tokens=options.max_tokens or settings.default_max_tokens,
            temperature=options.temperature or settings.default_temperature,
            top_p=options.top_p or settings.default_top_p,
            # Always seeded, so that every logged auction can be replayed exactly.
            seed=options.seed if options.seed is not None else secrets.randbelow(2**31),
        )

    async def run(
        self, request: AuctionRequest, request_id: str | None = None, auction_id: str | None = None
    ) -> AuctionResponse:
        auction_id = auction_id or uuid.uuid4().hex
        log_context.auction_id.set(auction_id)
        started = time.perf_counter()
        try:
            response = await self._run(request, auction_id, request_id)
        except ServiceError as exc:
            metrics.AUCTIONS.labels(exc.error_type).inc()
            raise
        except asyncio.CancelledError:
            metrics.AUCTIONS.labels("client_closed_request").inc()
            raise
        metrics.AUCTIONS.labels("ok").inc()
        metrics.AUCTION_DURATION.observe(time.perf_counter() - started)
        logger.info(
            "auction served",
            extra={
                "samples": response.samples,
                "served_index": response.served_index,
                "exposed": [ad.id for ad in response.ads if ad.exposed],
                "cache_hit": response.cache_hit,
                "timings_ms": response.timings_ms,
            },
        )
        return response

    async def _run(self, request: AuctionRequest, auction_id: str, request_id: str | None) -> AuctionResponse:
        clock = StageClock()
        context = to_context(request)
        sampling = self.sampling_for(request)

        prompt = build_prompt(context, self._engine.tokenizer.render_chat)
        token_ids = self._engine.tokenizer.encode(prompt.text)
        budget = self._engine.max_model_len - sampling.max_tokens
        if len(token_ids) > budget:
            raise InvalidRequest(
                f"the prompt has {len(token_ids)} tokens; with max_tokens={sampling.max_tokens} the model "
                f"allows {budget}: send fewer or shorter ads, or a shorter query"
            )
        clock.lap("prompt")

        key = cache_key(self._engine.model_name, prompt.hash, sampling, request.options.seed is not None)
        cached = await self._cache.get(key) if self._cache else None
        clock.lap("cache")
        if cached is not None:
            generation, seed = cached
            sampling = dataclasses.replace(sampling, seed=seed)
        else:
            generation = await self._generate(token_ids, sampling, auction_id)
            if self._cache:
                self._in_background(self._cache.put(key, generation, sampling.seed))
        clock.lap("generate")

        texts = [sample.text for sample in generation.samples]
        outcome = auction.run(context, texts, auction_id, self._ctr_model, self._weights)
        clock.lap("mechanism")

        urls = {ad.id: ad.url for ad in context.ads}
        prices = {ad.ad_id: ad.payment.price_per_click for ad in outcome.ads}

        def link(ad_id: str) -> str:
            return self._clicks.url(ClickTarget(auction_id, ad_id, urls[ad_id], prices[ad_id]))

        served = outcome.served
        text = exposure.render(served, link)
        ads = [
            AdResult(
                id=ad.ad_id,
                exposed=ad.exposed_in_served,
                itctr=ad.itctr.mean,
                itctr_stderr=ad.itctr.stderr,
                exposure_rate=ad.itctr.exposure_rate,
                expected_payment=ad.payment.expected_payment,
                price_per_click=ad.payment.price_per_click,
                click_url=link(ad.ad_id) if ad.exposed_in_served else None,
            )
            for ad in outcome.ads
        ]
        clock.lap("render")

        # Logged before the response leaves: a served auction is never missing from the log.
        self._events.emit(
            IMPRESSIONS,
            impression_event(
                auction_id=auction_id,
                timestamp=time.time(),
                request_id=request_id,
                model=self._engine.model_name,
                ctr_model_version=self._ctr_model.version,
                context=context,
                prompt=prompt,
                sampling=sampling,
                generation=generation,
                outcome=outcome,
                cache_hit=cached is not None,
            ),
            event_id=f"imp:{auction_id}",
        )
        metrics.observe_auction(outcome, [ad.bid for ad in context.ads])
        clock.lap("log")

        return AuctionResponse(
            auction_id=auction_id,
            text=text,
            raw_text=served.text,
            served_index=outcome.served_index,
            samples=len(texts),
            model=self._engine.model_name,
            prompt_hash=prompt.hash,
            seed=sampling.seed,
            cache_hit=cached is not None,
            ads=ads,
            format_errors=len(served.errors),
            objective=outcome.objectives[outcome.served_index],
            timings_ms=clock.timings_ms(),
            sample_texts=texts if request.options.return_samples else None,
        )

    async def _generate(self, token_ids: list[int], sampling: SamplingRequest, auction_id: str) -> Generation:
        metrics.ENGINE_IN_FLIGHT.inc()
        try:
            generation = await self._engine.generate(token_ids, sampling, auction_id)
        except ServiceError as exc:
            metrics.ENGINE_ERRORS.labels(exc.error_type).inc()
            raise
        except asyncio.CancelledError:
            metrics.ENGINE_ERRORS.labels("cancelled").inc()
            raise
        finally:
            metrics.ENGINE_IN_FLIGHT.dec()
        metrics.ENGINE_SAMPLES.inc(len(generation.samples))
        metrics.ENGINE_PROMPT_TOKENS.inc(generation.prompt_tokens)
        metrics.ENGINE_GENERATED_TOKENS.inc(sum(s.num_tokens for s in generation.samples))
        return generation

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)  # keep a reference until done
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for background work (cache writes) to finish."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
