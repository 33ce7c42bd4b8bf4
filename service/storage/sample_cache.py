"""The sample cache: an auction's K samples by (model, prompt hash, sampling parameters), with a TTL.

A repeated context does not pay for generation twice: a hit skips the engine and the auction still draws a fresh
uniformly random served sample among the cached K. Seeded requests are cached under their seed (the same seed
must give the same samples); unseeded ones share one entry per context, whatever random seed produced it.
Redis trouble degrades to a miss, never to an error.
"""

from __future__ import annotations

import hashlib
import json
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.engine.base import Generation, Sample, SamplingRequest
from service.observability import metrics

logger = logging.getLogger(__name__)


def cache_key(model: str, prompt_hash: str, sampling: SamplingRequest, seeded: bool) -> str:
    seed = str(sampling.seed) if seeded else "*"
    raw = (
        f"{model}|{prompt_hash}|n={sampling.n}|max_tokens={sampling.max_tokens}|"
        f"temperature={sampling.temperature!r}|top_p={sampling.top_p!r}|seed={seed}|regex={sampling.regex!r}"
    )
    return "samples:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()


class SampleCache:
    def __init__(self, redis: aioredis.Redis, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def get(self, key: str) -> tuple[Generation, int] | None:
        """The cached generation and the seed that produced it, or None."""
        try:
            raw = await self._redis.get(key)
        except RedisError:
            metrics.REDIS_ERRORS.labels("cache_get").inc()
            metrics.SAMPLE_CACHE.labels("miss").inc()
            return None
        if raw is None:
            metrics.SAMPLE_CACHE.labels("miss").inc()
            return None
        value = json.loads(raw)
        metrics.SAMPLE_CACHE.labels("hit").inc()
        generation = Generation(
            samples=tuple(Sample(**s) for s in value["samples"]),
            prompt_tokens=value["prompt_tokens"],
        )
        return generation, int(value["seed"])

    async def put(self, key: str, generation: Generation, seed: int) -> None:
        value = {
            "seed": seed,
            "prompt_tokens": generation.prompt_tokens,
            "samples": [
                {"index": s.index, "text": s.text, "finish_reason": s.finish_reason, "num_tokens": s.num_tokens}
                for s in generation.samples
            ],
        }
        try:
            await self._redis.set(key, json.dumps(value, ensure_ascii=False), ex=self._ttl_s)
        except RedisError:
            metrics.REDIS_ERRORS.labels("cache_put").inc()
