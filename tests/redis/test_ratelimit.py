"""The GCRA rate limiter on real Redis."""

from __future__ import annotations

import redis.asyncio as aioredis

from service.security.ratelimit import RateLimiter


async def test_bursts_then_the_average_rate(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis, per_minute=60, burst=3)  # one per second on average, three at once
    decisions = [await limiter.check("k1") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert decisions[3].retry_after_s == 1


async def test_limits_are_per_identity_and_overridable(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis, per_minute=60, burst=1)
    assert (await limiter.check("a")).allowed
    assert not (await limiter.check("a")).allowed
    assert (await limiter.check("b")).allowed  # another key has its own budget
    unlimited = [await limiter.check("c", per_minute=0) for _ in range(20)]
    assert all(d.allowed for d in unlimited)  # 0: unlimited


async def test_replicas_share_the_budget(redis: aioredis.Redis) -> None:
    one, two = RateLimiter(redis, 60, 2), RateLimiter(redis, 60, 2)  # two service processes, one Redis
    assert (await one.check("shared")).allowed
    assert (await two.check("shared")).allowed
    assert not (await one.check("shared")).allowed
