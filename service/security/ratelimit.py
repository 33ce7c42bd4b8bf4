"""Per-key rate limiting shared by all replicas through Redis: GCRA (the generic cell rate algorithm, as in
redis-cell / throttled): ``per_minute`` requests per minute on average, bursts up to ``burst`` at once.
If Redis cannot answer, requests are let through (counted in ``adauction_redis_errors_total``): the limiter
protects capacity, it must not take the service down with Redis."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.observability import metrics

# KEYS[1]: the key's theoretical arrival time (ms). ARGV: now (ms), emission interval (ms), tolerance (ms).
# Returns {allowed (0|1), retry after (ms)}.
_GCRA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, math.ceil(allow_at - now)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return {1, 0}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_s: int


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, per_minute: int, burst: int) -> None:
        self._redis = redis
        self._script = redis.register_script(_GCRA)
        self.per_minute = per_minute
        self.burst = burst

    async def check(self, identity: str, per_minute: int | None = None) -> Decision:
        rate = self.per_minute if per_minute is None else per_minute
        if rate <= 0:
            return Decision(True, 0)
        interval_ms = 60_000 / rate
        tolerance_ms = interval_ms * max(0, self.burst - 1)
        now_ms = time.time() * 1000
        try:
            allowed, retry_ms = await self._script(
                keys=[f"rl:{identity}"], args=[int(now_ms), interval_ms, tolerance_ms]
            )
        except RedisError:
            metrics.REDIS_ERRORS.labels("rate_limit").inc()
            return Decision(True, 0)
        return Decision(bool(allowed), max(1, math.ceil(int(retry_ms) / 1000)) if not allowed else 0)
