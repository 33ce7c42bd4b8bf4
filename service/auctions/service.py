"""Orchestration of one auction, whole answers: prompt → K samples (cache or engine) → mechanism → rendered,
priced response, logged. Streamed answers are ``service.auctions.stream``.

The I/O lives here (engine, cache, event log, timing); every decision is delegated to the pure
``service.mechanism`` code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping

from service.auctions import mapping
from service.auctions.admission import Admission
from service.auctions.links import Link, link_maker
from service.auctions.preparation import Prepared, prepare, relevance_floor
from service.auctions.samples import SampleSource
from service.auctions.schemas import AuctionRequest, AuctionResponse
from service.clicks.tokens import ClickSigner
from service.controls.profile import strip_special_categories
from service.controls.service import Controls, Decision
from service.engine.base import Engine, Generation
from service.errors import ServiceError
from service.events.log import IMPRESSIONS, EventLog
from service.mechanism import auction, exposure
from service.mechanism.ctr import CTRModel
from service.mechanism.exposure import Exposure
from service.mechanism.objective import ObjectiveWeights
from service.mechanism.payments import PaymentRule, first_price
from service.mechanism.prompt import RANKED_FORMATS, format_or_default
from service.mechanism.relevance import USER_PRIOR_RATE, Relevance
from service.mechanism.types import AuctionContext
from service.models.encoder import Encoder
from service.models.relevance import score as score_relevance
from service.models.relevance import score_cached as score_relevance_cached
from service.observability import log_context, metrics
from service.observability.timing import StageClock
from service.settings import Settings
from service.storage.sample_cache import SampleCache

logger = logging.getLogger(__name__)


class AuctionService:
    def __init__(
        self,
        engine: Engine,
        ctr_model: CTRModel,
        encoder: Encoder,
        controls: Controls,
        weights: ObjectiveWeights,
        click_signer: ClickSigner,
        events: EventLog,
        cache: SampleCache | None,
        settings: Settings,
    ) -> None:
        self.engine = engine
        self.ctr_model = ctr_model
        self.encoder = encoder
        self.controls = controls
        self.weights = weights
        self.settings = settings
        self.samples = SampleSource(engine, cache)
        self.admission = Admission(settings.max_auctions_in_flight)
        self._signer = click_signer
        self._events = events

    @property
    def model_name(self) -> str:
        return self.engine.model_name

    def prepare(
        self,
        request: AuctionRequest,
        auction_id: str,
        context: AuctionContext | None = None,
        decision: Decision | None = None,
        fit: Mapping[str, float] | None = None,
    ) -> Prepared:
        rate = decision.user_click_rate if decision is not None else USER_PRIOR_RATE
        return prepare(request, auction_id, self.engine, self.settings, context, rate, fit)

    async def prompt_fit(self, context: AuctionContext, request: AuctionRequest) -> dict[str, float] | None:
        """Each candidate's fit to the question (sim(question, ad's topic)) when the served prompt format ranks by
        it (``p3``) or the request's relevance floor needs it, else None. Encoder work: inline when its texts are
        cached, else in a worker thread; the mechanism's scoring after generation then finds the query, ads and
        topics in the cache."""
        ranked = format_or_default(self.settings.prompt_format) in RANKED_FORMATS
        if not ranked and not relevance_floor(request, self.settings):
            return None
        relevance = score_relevance_cached(self.encoder, context, ())
        if relevance is None:
            relevance = await asyncio.to_thread(score_relevance, self.encoder, context, ())
        return dict(relevance.topic)

    async def eligible(self, request: AuctionRequest) -> tuple[AuctionContext, Decision]:
        """The request's context with special-category profile fields left out and only the ads that may run."""
        context = mapping.to_context(request)
        context = dataclasses.replace(context, profile=strip_special_categories(context.profile))
        categories = {ad.id: ad.category for ad in request.ads if ad.category}
        decision = await self.controls.decide(
            context, request.options.reserve_price, request.options.blocked_categories, categories
        )
        return dataclasses.replace(context, ads=decision.verdict.eligible), decision

    def shown(self, prepared: Prepared, outcome: auction.AuctionOutcome, decision: Decision) -> None:
        """Count the served answer's ads against this user's frequency caps (in the background)."""
        exposed = set(outcome.served.exposed)
        ads = [ad for ad in prepared.context.ads if ad.id in exposed]
        if ads:
            self.samples.in_background(
                self.controls.count_impression(prepared.context, ads, decision.configs, prepared.auction_id)
            )

    async def run(self, request: AuctionRequest, auction_id: str, request_id: str | None = None) -> AuctionResponse:
        log_context.auction_id.set(auction_id)
        started = time.perf_counter()
        try:
            with self.admission.slot():
                response = await self._run(request, auction_id, request_id)
        except ServiceError as exc:
            if exc.error_type != "overloaded":  # counted by admission
                metrics.AUCTIONS.labels(exc.error_type).inc()
            raise
        except asyncio.CancelledError:
            metrics.AUCTIONS.labels("client_closed_request").inc()
            raise
        metrics.AUCTIONS.labels("ok").inc()
        metrics.AUCTION_DURATION.observe(time.perf_counter() - started)
        log_served(response)
        return response

    async def _run(self, request: AuctionRequest, auction_id: str, request_id: str | None) -> AuctionResponse:
        clock = StageClock()
        context, decision = await self.eligible(request)
        clock.lap("eligibility")
        prepared = self.prepare(request, auction_id, context, decision, await self.prompt_fit(context, request))
        clock.lap("prompt")
        hit = await self.samples.cached(prepared)
        clock.lap("cache")
        if hit is not None:
            prepared, generation = hit
        else:
            generation = await self.samples.generate(prepared)
        clock.lap("generate")
        outcome = await self.mechanism(prepared, generation, clock)
        clock.lap("mechanism")
        link = self.links(prepared, outcome)
        text = exposure.render(outcome.served, link, self.settings.sponsored_link_template)
        clock.lap("render")
        self.log_impression(prepared, generation, outcome, request_id, cache_hit=hit is not None, decision=decision)
        self.shown(prepared, outcome, decision)
        clock.lap("log")
        return self.response(prepared, generation, outcome, text, link, clock, hit is not None, request, decision)

    # -- the pieces whole and streamed answers share ------------------------------------------------------------

    async def mechanism(
        self, prepared: Prepared, generation: Generation, clock: StageClock | None = None
    ) -> auction.AuctionOutcome:
        """Parse the K samples, score relevance with the encoder (in a worker thread: CPU work must not block the
        event loop), then run the pure mechanism."""
        texts = [s.text for s in generation.samples]
        exposures = auction.parse_samples(prepared.context, texts, [s.finish_reason for s in generation.samples])
        relevance = score_relevance_cached(self.encoder, prepared.context, exposures)
        if relevance is None:
            relevance = await asyncio.to_thread(score_relevance, self.encoder, prepared.context, exposures)
        relevance = dataclasses.replace(relevance, user=prepared.user_click_rate)
        if clock is not None:
            clock.lap("ctr")
        return self._run_mechanism(prepared, texts, exposures, relevance)

    def mechanism_now(self, prepared: Prepared, generation: Generation) -> auction.AuctionOutcome:
        """The same, on the calling thread: for the cut-short impression of a stream whose task is being
        cancelled, where nothing can be awaited any more (a few ms of blocking on a rare path)."""
        texts = [s.text for s in generation.samples]
        exposures = auction.parse_samples(prepared.context, texts, [s.finish_reason for s in generation.samples])
        relevance = dataclasses.replace(
            score_relevance(self.encoder, prepared.context, exposures), user=prepared.user_click_rate
        )
        return self._run_mechanism(prepared, texts, exposures, relevance)

    def _run_mechanism(
        self, prepared: Prepared, texts: list[str], exposures: tuple[Exposure, ...], relevance: Relevance
    ) -> auction.AuctionOutcome:
        return auction.run(
            prepared.context,
            texts,
            prepared.auction_id,
            self.ctr_model,
            self.weights,
            prepared.rule,
            curve_grid=prepared.curve_bids,
            relevance=relevance,
            exposures=exposures,
        )

    def links(self, prepared: Prepared, outcome: auction.AuctionOutcome | None = None) -> Link:
        """Click links priced by the outcome; before it is known (a live uniform stream) at the price that the
        uniform draw implies whatever the samples: the bid (first price) or nothing (Myerson, T = ∞)."""
        if outcome is not None:
            prices = {ad.ad_id: ad.payment.price_per_click for ad in outcome.ads}
        elif prepared.rule.payment is PaymentRule.MYERSON:
            prices = {ad.id: 0.0 for ad in prepared.context.ads}  # uniform: the allocation ignores the bid
        else:
            prices = {ad.id: first_price(ad, 0.0).price_per_click for ad in prepared.context.ads}
        return link_maker(self._signer, prepared.auction_id, prepared.context, prices)

    def log_impression(
        self,
        prepared: Prepared,
        generation: Generation,
        outcome: auction.AuctionOutcome,
        request_id: str | None,
        cache_hit: bool,
        shown_text: str | None = None,
        decision: Decision | None = None,
    ) -> None:
        # Logged before the response leaves: a served auction is never missing from the log.
        self._events.emit(
            IMPRESSIONS,
            mapping.impression_event(
                auction_id=prepared.auction_id,
                timestamp=time.time(),
                request_id=request_id,
                model=self.engine.model_name,
                ctr_model_version=self.ctr_model.version,
                context=prepared.context,
                prompt=prepared.prompt,
                sampling=prepared.sampling,
                generation=generation,
                outcome=outcome,
                cache_hit=cache_hit,
                shown_text=shown_text,
                bids_in_prompt=prepared.bids_in_prompt,
                relevance_floor=prepared.relevance_floor,
                ineligible=decision.verdict.ineligible if decision else (),
                sensitive_topic=decision.topic if decision else None,
                link_template=self.settings.sponsored_link_template,
            ),
            event_id=f"imp:{prepared.auction_id}",
        )
        if shown_text is None:
            metrics.observe_auction(outcome, [ad.bid for ad in prepared.context.ads])

    def response(
        self,
        prepared: Prepared,
        generation: Generation,
        outcome: auction.AuctionOutcome,
        text: str,
        link: Link,
        clock: StageClock,
        cache_hit: bool,
        request: AuctionRequest,
        decision: Decision,
    ) -> AuctionResponse:
        return mapping.to_response(
            auction_id=prepared.auction_id,
            model=self.engine.model_name,
            ctr_model=self.ctr_model.version,
            prompt=prepared.prompt,
            prompt_tokens=len(prepared.token_ids),
            sampling=prepared.sampling,
            generation=generation,
            outcome=outcome,
            text=text,
            click_url={ad_id: link(ad_id) for ad_id in outcome.served.exposed},
            timings_ms=clock.timings_ms(),
            cache_hit=cache_hit,
            return_samples=request.options.return_samples,
            bids_in_prompt=prepared.bids_in_prompt,
            relevance_floor=prepared.relevance_floor,
            ineligible=decision.verdict.ineligible,
            sensitive_topic=decision.topic,
            context=prepared.context,
        )

    async def drain(self) -> None:
        await self.samples.drain()


def log_served(response: AuctionResponse) -> None:
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
