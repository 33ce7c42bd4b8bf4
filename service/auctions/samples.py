"""Where an auction's K samples come from: the sample cache, else the engine (one request, n = K) — with the
engine metrics and the cache write in one place for whole and streamed answers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from service.auctions.preparation import Prepared
from service.engine.base import Engine, Generation, Sample, SampleDelta
from service.errors import ServiceError
from service.observability import metrics
from service.storage.sample_cache import SampleCache, cache_key


class SampleSource:
    def __init__(self, engine: Engine, cache: SampleCache | None) -> None:
        self._engine = engine
        self._cache = cache
        self._background: set[asyncio.Task[None]] = set()

    def _key(self, prepared: Prepared) -> str:
        return cache_key(self._engine.model_name, prepared.prompt.hash, prepared.sampling, prepared.seeded)

    async def cached(self, prepared: Prepared) -> tuple[Prepared, Generation] | None:
        """The cached K samples, with ``prepared`` carrying the seed that produced them; None on a miss."""
        if self._cache is None:
            return None
        hit = await self._cache.get(self._key(prepared))
        if hit is None:
            return None
        generation, seed = hit
        return dataclasses.replace(prepared, sampling=dataclasses.replace(prepared.sampling, seed=seed)), generation

    async def generate(self, prepared: Prepared) -> Generation:
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
        self.generated(prepared, generation)
        return generation

    async def stream(self, prepared: Prepared) -> AsyncIterator[SampleDelta]:
        """The engine's deltas of all K samples; call ``generated`` with the assembled samples at the end."""
        metrics.ENGINE_IN_FLIGHT.inc()
        try:
            async for delta in self._engine.stream(prepared.token_ids, prepared.sampling, prepared.auction_id):
                yield delta
        except ServiceError as exc:
            metrics.ENGINE_ERRORS.labels(exc.error_type).inc()
            raise
        finally:
            metrics.ENGINE_IN_FLIGHT.dec()

    def generated(self, prepared: Prepared, generation: Generation) -> None:
        """Count a finished generation and cache it (in the background: the response never waits for Redis)."""
        metrics.ENGINE_SAMPLES.inc(len(generation.samples))
        metrics.ENGINE_PROMPT_TOKENS.inc(generation.prompt_tokens)
        metrics.ENGINE_GENERATED_TOKENS.inc(sum(s.num_tokens for s in generation.samples))
        if self._cache is not None:
            self.in_background(self._cache.put(self._key(prepared), generation, prepared.sampling.seed))

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)  # keep a reference until done
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for background cache writes to finish."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def assembled(prepared: Prepared, texts: list[str], finish: list[str | None], tokens: list[int]) -> Generation:
    """The K samples accumulated from a stream (complete, or as far as they got)."""
    samples = tuple(Sample(i, texts[i], finish[i], tokens[i]) for i in range(prepared.sampling.n))
    return Generation(samples=samples, prompt_tokens=len(prepared.token_ids))
