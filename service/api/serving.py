"""Orchestration of one auction: prompt → engine (K samples) → mechanism → rendered, priced response, either
whole (``run``) or streamed while the served sample is generated (``stream``).

The I/O lives here (engine calls, cache, event log, timing); every decision is delegated to the pure
``service.mechanism`` code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from service.api.protocol import AdResult, AuctionRequest, AuctionResponse
from service.clicks.tokens import ClickSigner, ClickTarget
from service.config import Settings
from service.engine.base import Engine, Generation, Sample, SamplingRequest
from service.errors import InvalidRequest, Overloaded, ServiceError
from service.events.log import IMPRESSIONS, EventLog
from service.events.schema import impression_event
from service.mechanism import auction, exposure
from service.mechanism.ctr import CTRModel
from service.mechanism.objective import ObjectiveWeights
from service.mechanism.payments import first_price
from service.mechanism.prompt import Prompt, build_prompt
from service.mechanism.streaming import StreamRenderer
from service.mechanism.types import Ad, AdvertiserKind, AuctionContext
from service.observability import log_context, metrics
from service.observability.timing import StageClock
from service.storage.sample_cache import SampleCache, cache_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    """An auction ready for the engine."""

    auction_id: str
    context: AuctionContext
    sampling: SamplingRequest
    prompt: Prompt
    token_ids: list[int]
    seeded: bool


@dataclass(frozen=True, slots=True)
class StreamDelta:
    """Rendered text of the served answer, safe to show."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The served answer is complete (``finish_reason``); the auction result follows."""

    finish_reason: str | None


@dataclass(frozen=True, slots=True)
class StreamResult:
    """All K samples are in: the priced auction."""

    response: AuctionResponse


StreamEvent = StreamDelta | StreamEnd | StreamResult


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
        self._in_flight = 0

    @property
    def ctr_model_version(self) -> str:
        return self._ctr_model.version

    @property
    def model_name(self) -> str:
        return self._engine.model_name

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

    def prepare(self, request: AuctionRequest, auction_id: str | None = None) -> Prepared:
        """Context, sampling and prompt; raises ``InvalidRequest`` when the prompt does not fit the model."""
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
        return Prepared(
            auction_id=auction_id or uuid.uuid4().hex,
            context=context,
            sampling=sampling,
            prompt=prompt,
            token_ids=token_ids,
            seeded=request.options.seed is not None,
        )

    # -- whole answers ------------------------------------------------------------------------------------------

    async def run(
        self, request: AuctionRequest, request_id: str | None = None, auction_id: str | None = None
    ) -> AuctionResponse:
        auction_id = auction_id or uuid.uuid4().hex
        log_context.auction_id.set(auction_id)
        started = time.perf_counter()
        self._admit()
        try:
            response = await self._run(request, auction_id, request_id)
        except ServiceError as exc:
            metrics.AUCTIONS.labels(exc.error_type).inc()
            raise
        except asyncio.CancelledError:
            metrics.AUCTIONS.labels("client_closed_request").inc()
            raise
        finally:
            self._release()
        metrics.AUCTIONS.labels("ok").inc()
        metrics.AUCTION_DURATION.observe(time.perf_counter() - started)
        self._log_served(response)
        return response

    async def _run(self, request: AuctionRequest, auction_id: str, request_id: str | None) -> AuctionResponse:
        clock = StageClock()
        prepared = self.prepare(request, auction_id)
        clock.lap("prompt")

        key = cache_key(self._engine.model_name, prepared.prompt.hash, prepared.sampling, prepared.seeded)
        cached = await self._cache.get(key) if self._cache else None
        clock.lap("cache")
        if cached is not None:
            generation, seed = cached
            prepared = dataclasses.replace(prepared, sampling=dataclasses.replace(prepared.sampling, seed=seed))
        else:
            generation = await self._generate(prepared)
            if self._cache:
                self._in_background(self._cache.put(key, generation, prepared.sampling.seed))
        clock.lap("generate")

        outcome = self._mechanism(prepared, generation)
        clock.lap("mechanism")
        link = self._links(prepared)
        text = exposure.render(outcome.served, link)
        clock.lap("render")
        self._log_impression(prepared, generation, outcome, request_id, cache_hit=cached is not None)
        clock.lap("log")
        return self._response(
            prepared, generation, outcome, text, link, clock, cache_hit=cached is not None, request=request
        )

    # -- streamed answers ---------------------------------------------------------------------------------------

    async def stream(
        self, request: AuctionRequest, request_id: str | None = None, auction_id: str | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """The served sample's rendered text as it is generated, then the priced auction once all K are in.

        The served index is drawn before generation (from the auction id, as for whole answers), so the stream
        is still a uniform draw among the K. If the consumer stops early (client gone), all K samples are
        aborted and the impression is logged as cut short, without pricing.
        """
        auction_id = auction_id or uuid.uuid4().hex
        log_context.auction_id.set(auction_id)
        started = time.perf_counter()
        clock = StageClock()
        prepared = self.prepare(request, auction_id)
        self._admit()
        clock.lap("prompt")
        served_index = auction.draw_served_index(auction_id, prepared.sampling.n)
        link = self._links(prepared)
        renderer = StreamRenderer(prepared.context.ads, link)
        texts = [""] * prepared.sampling.n
        tokens = [0] * prepared.sampling.n
        finish: list[str | None] = [None] * prepared.sampling.n
        first_shown: float | None = None
        finished = failed = False
        metrics.STREAMS_ACTIVE.inc()
        try:
            key = cache_key(self._engine.model_name, prepared.prompt.hash, prepared.sampling, prepared.seeded)
            cached = await self._cache.get(key) if self._cache else None
            clock.lap("cache")
            if cached is not None:
                generation, seed = cached
                prepared = dataclasses.replace(prepared, sampling=dataclasses.replace(prepared.sampling, seed=seed))
                for sample in generation.samples:
                    texts[sample.index], tokens[sample.index] = sample.text, sample.num_tokens
                    finish[sample.index] = sample.finish_reason
                piece = renderer.feed(texts[served_index]) + renderer.finish()
                first_shown = time.perf_counter()
                yield StreamDelta(piece)
                yield StreamEnd(finish[served_index])
            else:
                metrics.ENGINE_IN_FLIGHT.inc()
                try:
                    async for delta in self._engine.stream(prepared.token_ids, prepared.sampling, auction_id):
                        texts[delta.index] += delta.text
                        tokens[delta.index] += delta.num_tokens
                        if delta.finish_reason is not None:
                            finish[delta.index] = delta.finish_reason
                        if delta.index != served_index:
                            continue
                        piece = renderer.feed(delta.text)
                        if delta.finish_reason is not None:
                            piece += renderer.finish()
                        if piece:
                            if first_shown is None:
                                first_shown = time.perf_counter()
                                metrics.STREAM_TTFT.observe(first_shown - started)
                            yield StreamDelta(piece)
                        if delta.finish_reason is not None:
                            yield StreamEnd(delta.finish_reason)
                except ServiceError as exc:
                    metrics.ENGINE_ERRORS.labels(exc.error_type).inc()
                    raise
                finally:
                    metrics.ENGINE_IN_FLIGHT.dec()
                generation = self._assembled(prepared, texts, finish, tokens)
                self._count_generation(generation)
                if self._cache:
                    self._in_background(self._cache.put(key, generation, prepared.sampling.seed))
            clock.lap("generate")
            outcome = self._mechanism(prepared, generation)
            clock.lap("mechanism")
            self._log_impression(prepared, generation, outcome, request_id, cache_hit=cached is not None)
            clock.lap("log")
            response = self._response(
                prepared,
                generation,
                outcome,
                renderer.shown,
                link,
                clock,
                cache_hit=cached is not None,
                request=request,
            )
            finished = True
            metrics.AUCTIONS.labels("ok").inc()
            metrics.AUCTION_DURATION.observe(time.perf_counter() - started)
            metrics.STREAMS.labels("completed").inc()
            self._log_served(response)
            yield StreamResult(response)
        except ServiceError as exc:
            failed = True
            metrics.AUCTIONS.labels(exc.error_type).inc()
            metrics.STREAMS.labels("error").inc()
            raise
        finally:
            self._release()
            metrics.STREAMS_ACTIVE.dec()
            metrics.STREAM_DURATION.observe(time.perf_counter() - started)
            if not finished and not failed:
                # The client left mid-answer: keep what was generated and shown, for the
                # record and for training, but price nothing: the answer was never completed.
                metrics.STREAMS.labels("cut_short").inc()
                partial = self._assembled(prepared, texts, finish, tokens)
                outcome = self._mechanism(prepared, partial)
                self._log_impression(prepared, partial, outcome, request_id, cache_hit=False, shown_text=renderer.shown)

    # -- shared pieces ------------------------------------------------------------------------------------------

    def _admit(self) -> None:
        """Refuse at once rather than queue without end: past the limit, waiting only adds latency for everyone."""
        if self._in_flight >= self._settings.max_auctions_in_flight:
            metrics.OVERLOADED.inc()
            metrics.AUCTIONS.labels("overloaded").inc()
            raise Overloaded(
                f"{self._in_flight} auctions are in flight (limit {self._settings.max_auctions_in_flight}); retry soon"
            )
        self._in_flight += 1
        metrics.AUCTIONS_IN_FLIGHT.set(self._in_flight)

    def _release(self) -> None:
        self._in_flight -= 1
        metrics.AUCTIONS_IN_FLIGHT.set(self._in_flight)

    async def _generate(self, prepared: Prepared) -> Generation:
        metrics.ENGINE_IN_FLIGHT.inc()
        try:
            generation = await self._engine.generate(prepared.token_ids, prepared.sampling, prepared.auction_id)
        except ServiceError as exc:
            metrics.ENGINE_ERRORS.labels(exc.error_type).inc()
            raise
        except asyncio.CancelledError:
            metrics.ENGINE_ERRORS.labels("cancelled").inc()
            raise
        finally:
            metrics.ENGINE_IN_FLIGHT.dec()
        self._count_generation(generation)
        return generation

    def _mechanism(self, prepared: Prepared, generation: Generation) -> auction.AuctionOutcome:
        texts = [s.text for s in generation.samples]
        return auction.run(prepared.context, texts, prepared.auction_id, self._ctr_model, self._weights)

    @staticmethod
    def _assembled(prepared: Prepared, texts: list[str], finish: list[str | None], tokens: list[int]) -> Generation:
        """The K samples accumulated from a stream (complete, or as far as they got)."""
        samples = tuple(Sample(i, texts[i], finish[i], tokens[i]) for i in range(prepared.sampling.n))
        return Generation(samples=samples, prompt_tokens=len(prepared.token_ids), cached_prompt_tokens=None)

    @staticmethod
    def _count_generation(generation: Generation) -> None:
        metrics.ENGINE_SAMPLES.inc(len(generation.samples))
        metrics.ENGINE_PROMPT_TOKENS.inc(generation.prompt_tokens)
        metrics.ENGINE_GENERATED_TOKENS.inc(sum(s.num_tokens for s in generation.samples))

    def _links(self, prepared: Prepared) -> Callable[[str], str]:
        """Signed click URLs, one per ad for the whole auction (the same URL in the text and in ``ads[]``)."""
        ads = {ad.id: ad for ad in prepared.context.ads}
        made: dict[str, str] = {}

        def link(ad_id: str) -> str:
            if ad_id not in made:
                price = first_price(ads[ad_id], 0.0).price_per_click  # the price does not depend on ITCTR
                made[ad_id] = self._clicks.url(ClickTarget(prepared.auction_id, ad_id, ads[ad_id].url, price))
            return made[ad_id]

        return link

    def _log_impression(
        self,
        prepared: Prepared,
        generation: Generation,
        outcome: auction.AuctionOutcome,
        request_id: str | None,
        cache_hit: bool,
        shown_text: str | None = None,
    ) -> None:
        # Logged before the response leaves: a served auction is never missing from the log.
        self._events.emit(
            IMPRESSIONS,
            impression_event(
                auction_id=prepared.auction_id,
                timestamp=time.time(),
                request_id=request_id,
                model=self._engine.model_name,
                ctr_model_version=self._ctr_model.version,
                context=prepared.context,
                prompt=prepared.prompt,
                sampling=prepared.sampling,
                generation=generation,
                outcome=outcome,
                cache_hit=cache_hit,
                shown_text=shown_text,
            ),
            event_id=f"imp:{prepared.auction_id}",
        )
        if shown_text is None:
            metrics.observe_auction(outcome, [ad.bid for ad in prepared.context.ads])

    def _response(
        self,
        prepared: Prepared,
        generation: Generation,
        outcome: auction.AuctionOutcome,
        text: str,
        link: Callable[[str], str],
        clock: StageClock,
        cache_hit: bool,
        request: AuctionRequest,
    ) -> AuctionResponse:
        served = outcome.served
        texts = [s.text for s in generation.samples]
        return AuctionResponse(
            auction_id=prepared.auction_id,
            text=text,
            raw_text=served.text,
            served_index=outcome.served_index,
            samples=len(texts),
            model=self._engine.model_name,
            ctr_model=self._ctr_model.version,
            prompt_hash=prepared.prompt.hash,
            prompt_tokens=len(prepared.token_ids),
            seed=prepared.sampling.seed,
            cache_hit=cache_hit,
            ads=[
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
            ],
            format_errors=len(served.errors),
            objective=outcome.objectives[outcome.served_index],
            timings_ms=clock.timings_ms(),
            sample_texts=texts if request.options.return_samples else None,
        )

    @staticmethod
    def _log_served(response: AuctionResponse) -> None:
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

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)  # keep a reference until done
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for background work (cache writes) to finish."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
