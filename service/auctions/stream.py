"""Streamed answers: the served sample's rendered text as it is generated, then the priced auction once all K
are in.

What is streamed depends on the selection rule:
- ``uniform`` (the paper): the served index is drawn before generation (from the auction id, as for whole
  answers), so the served sample streams as it is generated: time to first token is the engine's;
- ``optimal``: which sample is served depends on all K objectives, so the K are generated first and the selected
  one is then sent at once: time to first token is the whole generation (``docs/mechanism.md`` has both measured).
If the consumer stops early (client gone), all K samples are aborted and the impression is logged as cut short,
without pricing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from service.auctions.preparation import Prepared
from service.auctions.samples import assembled
from service.auctions.schemas import AuctionRequest, AuctionResponse
from service.auctions.service import AuctionService, log_served
from service.engine.base import Generation
from service.errors import ServiceError
from service.mechanism import auction
from service.mechanism.selection import Selection
from service.mechanism.streaming import StreamRenderer
from service.observability import log_context, metrics
from service.observability.timing import StageClock


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


async def stream(
    service: AuctionService, request: AuctionRequest, auction_id: str, request_id: str | None = None
) -> AsyncGenerator[StreamEvent, None]:
    log_context.auction_id.set(auction_id)
    started = time.perf_counter()
    clock = StageClock()
    context, decision = await service.eligible(request)
    clock.lap("eligibility")
    prepared = service.prepare(request, auction_id, context, decision, await service.prompt_fit(context, request))
    with service.admission.slot():
        clock.lap("prompt")
        k = prepared.sampling.n
        ads = prepared.context.ads
        live = prepared.rule.rule.selection is Selection.UNIFORM  # stream the served sample while it is generated
        served_index = auction.draw_served_index(auction_id, k)  # used only when live: q is uniform then
        template = service.settings.sponsored_link_template  # the sponsored label streams with the link
        link = service.links(prepared)
        renderer = StreamRenderer(ads, link, template)
        texts, tokens = [""] * k, [0] * k
        finish: list[str | None] = [None] * k
        first_shown: float | None = None
        finished = failed = False
        hit: tuple[Prepared, Generation] | None = None

        def shown(piece: str) -> StreamDelta:
            nonlocal first_shown
            if first_shown is None:
                first_shown = time.perf_counter()
                metrics.STREAM_TTFT.observe(first_shown - started)
            return StreamDelta(piece)

        metrics.STREAMS_ACTIVE.inc()
        try:
            hit = await service.samples.cached(prepared)
            clock.lap("cache")
            if hit is not None:
                prepared, generation = hit
                if live:
                    served = generation.samples[served_index]
                    yield shown(renderer.feed(served.text) + renderer.finish(served.finish_reason == "length"))
                    yield StreamEnd(served.finish_reason)
            else:
                async for delta in service.samples.stream(prepared):
                    texts[delta.index] += delta.text
                    tokens[delta.index] += delta.num_tokens
                    if delta.finish_reason is not None:
                        finish[delta.index] = delta.finish_reason
                    if not live or delta.index != served_index:
                        continue
                    piece = renderer.feed(delta.text)
                    if delta.finish_reason is not None:
                        piece += renderer.finish(delta.finish_reason == "length")
                    if piece:
                        yield shown(piece)
                    if delta.finish_reason is not None:
                        yield StreamEnd(delta.finish_reason)
                generation = assembled(prepared, texts, finish, tokens)
                service.samples.generated(prepared, generation)
            clock.lap("generate")
            outcome = await service.mechanism(prepared, generation, clock)
            clock.lap("mechanism")
            if not live:  # the selected sample, whole, now that all K are in
                served = generation.samples[outcome.served_index]
                link = service.links(prepared, outcome)
                renderer = StreamRenderer(ads, link, template)
                yield shown(renderer.feed(served.text) + renderer.finish(served.finish_reason == "length"))
                yield StreamEnd(served.finish_reason)
            service.log_impression(
                prepared, generation, outcome, request_id, cache_hit=hit is not None, decision=decision
            )
            service.shown(prepared, outcome, decision)
            clock.lap("log")
            response = service.response(
                prepared, generation, outcome, renderer.shown, link, clock, hit is not None, request, decision
            )
            finished = True
            metrics.AUCTIONS.labels("ok").inc()
            metrics.AUCTION_DURATION.observe(time.perf_counter() - started)
            metrics.STREAMS.labels("completed").inc()
            log_served(response)
            yield StreamResult(response)
        except ServiceError as exc:
            failed = True
            metrics.AUCTIONS.labels(exc.error_type).inc()
            metrics.STREAMS.labels("error").inc()
            raise
        finally:
            metrics.STREAMS_ACTIVE.dec()
            metrics.STREAM_DURATION.observe(time.perf_counter() - started)
            if not finished and not failed:
                # The client left mid-answer: keep what was generated and shown, for the
                # record and for training, but price nothing: the answer was never completed.
                metrics.STREAMS.labels("cut_short").inc()
                partial = assembled(prepared, texts, finish, tokens)
                outcome = service.mechanism_now(prepared, partial)
                service.log_impression(
                    prepared,
                    partial,
                    outcome,
                    request_id,
                    cache_hit=False,
                    shown_text=renderer.shown,
                    decision=decision,
                )
