"""Advertiser state in Redis, shared by every replica, and the atomic scripts that keep money and caps exact.

Keys (all under the service's Redis database):
- ``adv:{advertiser}``                 hash set by the admin API: ``daily_budget``, ``total_budget``, ``pacing``
                                       (0/1), ``cap`` (impressions per user and ad), ``advertiser_cap`` (per user
                                       and advertiser), ``cap_window_s``, ``name``, ``excluded_topics`` (JSON list);
- ``spend:{advertiser}:{YYYYMMDD}``    today's billed spend (UTC day; expires after 3 days);
- ``spend:{advertiser}:total``         all billed spend;
- ``billed:{auction}:{ad}``            a click already billed (a click is charged once per auction and ad);
- ``fcap:{user}:ad:{ad}`` / ``fcap:{user}:adv:{advertiser}``  impressions in the current window (expire with it);
- ``publisher:blocked``                set of ad categories no auction shows (the admin API; requests add their own);
- ``uhist:{user}``                     hash ``shown`` / ``clicked``: ads shown to the user and their first clicks (the
                                       CTR model's ``user_click_rate``; expires 30 days after the last impression);
- ``auser:{auction}``                  the auction's user, for the click to find its history (expires with the
                                       click window); ``uclick:{auction}:{ad}``: that click was counted once.

Billing a click is one Lua script (``CHARGE``): it refuses when the click was billed already or the budget is spent,
else adds the price to today's and the total spend. A click is charged only while spend < budget, so spend never
exceeds the budget by more than one click's price, under any concurrency. Counting an impression against the
caps is another (``COUNT_IMPRESSION``). Reads for eligibility go in one pipelined round trip.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from service.mechanism.eligibility import AdvertiserState

DAY_TTL_S = 3 * 24 * 3600

CHARGE = """
if redis.call('SET', KEYS[5], '1', 'NX', 'EX', tonumber(ARGV[3])) then
  local user = redis.call('GET', KEYS[6])
  -- the history key is derived here (a standalone Redis, as the service deploys; Redis Cluster would need
  -- the user in a hash tag of KEYS[6])
  if user then redis.call('HINCRBY', 'uhist:' .. user, 'clicked', 1) end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 'duplicate'} end
local price = tonumber(ARGV[1])
local daily = tonumber(redis.call('HGET', KEYS[4], 'daily_budget') or '')
local total = tonumber(redis.call('HGET', KEYS[4], 'total_budget') or '')
local today = tonumber(redis.call('GET', KEYS[2]) or '0')
local all = tonumber(redis.call('GET', KEYS[3]) or '0')
if total and all >= total then return {0, 'budget_exhausted'} end
if daily and today >= daily then return {0, 'budget_exhausted'} end
redis.call('INCRBYFLOAT', KEYS[2], price)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
redis.call('INCRBYFLOAT', KEYS[3], price)
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
return {1, 'billed'}
"""

COUNT_IMPRESSION = """
local caps = #KEYS - 2
for i = 1, caps do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[i])) end
end
redis.call('HINCRBY', KEYS[caps + 1], 'shown', tonumber(ARGV[caps + 1]))
redis.call('EXPIRE', KEYS[caps + 1], tonumber(ARGV[caps + 2]))
redis.call('SET', KEYS[caps + 2], ARGV[caps + 3], 'EX', tonumber(ARGV[caps + 4]))
return caps
"""
HISTORY_TTL_S = 30 * 24 * 3600


def today(now: float | None = None) -> str:
    return time.strftime("%Y%m%d", time.gmtime(now if now is not None else time.time()))


def day_fraction(now: float | None = None) -> float:
    """The share of the UTC day that has passed (even pacing spends the daily budget at this rate)."""
    t = now if now is not None else time.time()
    return (t % 86400) / 86400


@dataclass(frozen=True, slots=True)
class AdvertiserConfig:
    daily_budget: float | None = None
    total_budget: float | None = None
    pacing: bool = False
    cap: int | None = None  # impressions per user and ad in the window
    advertiser_cap: int | None = None  # impressions per user and advertiser in the window
    cap_window_s: int | None = None
    name: str | None = None
    excluded_topics: tuple[str, ...] | list[str] = ()

    @classmethod
    def from_hash(cls, data: Mapping[bytes | str, bytes | str]) -> AdvertiserConfig:
        def text(key: str) -> str | None:
            value = data.get(key) or data.get(key.encode())
            return value.decode() if isinstance(value, bytes) else value

        def number(key: str) -> float | None:
            value = text(key)
            return float(value) if value not in (None, "") else None

        cap, adv_cap, window = number("cap"), number("advertiser_cap"), number("cap_window_s")
        return cls(
            daily_budget=number("daily_budget"),
            total_budget=number("total_budget"),
            pacing=text("pacing") == "1",
            cap=int(cap) if cap is not None else None,
            advertiser_cap=int(adv_cap) if adv_cap is not None else None,
            cap_window_s=int(window) if window is not None else None,
            name=text("name"),
            excluded_topics=tuple(json.loads(text("excluded_topics") or "[]")),
        )

    def to_hash(self) -> dict[str, str]:
        out = {
            "daily_budget": "" if self.daily_budget is None else repr(self.daily_budget),
            "total_budget": "" if self.total_budget is None else repr(self.total_budget),
            "pacing": "1" if self.pacing else "0",
            "cap": "" if self.cap is None else str(self.cap),
            "advertiser_cap": "" if self.advertiser_cap is None else str(self.advertiser_cap),
            "cap_window_s": "" if self.cap_window_s is None else str(self.cap_window_s),
            "name": self.name or "",
            "excluded_topics": json.dumps(list(self.excluded_topics)),
        }
        return out


@dataclass(frozen=True, slots=True)
class Charge:
    billed: bool
    reason: str  # billed | duplicate | budget_exhausted | unavailable


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One auction's view of the controls' state: per advertiser config and state, per ad the cap counts."""

    configs: Mapping[str, AdvertiserConfig]
    states: Mapping[str, AdvertiserState]
    ad_counts: Mapping[str, int]
    advertiser_counts: Mapping[str, int]
    blocked: frozenset[str]
    user_shown: int = 0  # ads shown to this user so far, and their first clicks (``uhist:{user}``)
    user_clicked: int = 0


class ControlStore:
    def __init__(self, redis: aioredis.Redis, click_ttl_s: int) -> None:
        self._redis = redis
        self._click_ttl_s = click_ttl_s
        self._charge = redis.register_script(CHARGE)
        self._count = redis.register_script(COUNT_IMPRESSION)

    async def set_advertiser(self, advertiser: str, config: AdvertiserConfig) -> None:
        await self._redis.hset(f"adv:{advertiser}", mapping=config.to_hash())  # type: ignore[arg-type]

    async def advertiser(self, advertiser: str) -> tuple[AdvertiserConfig, AdvertiserState]:
        snapshot = await self.snapshot([advertiser], [], "")
        return snapshot.configs[advertiser], snapshot.states[advertiser]

    async def set_blocked(self, categories: Sequence[str]) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete("publisher:blocked")
            if categories:
                pipe.sadd("publisher:blocked", *categories)
            await pipe.execute()

    async def blocked(self) -> frozenset[str]:
        members = await self._redis.smembers("publisher:blocked")
        return frozenset(m.decode() if isinstance(m, bytes) else m for m in members)

    async def snapshot(self, advertisers: Sequence[str], user_ads: Sequence[str], user: str) -> Snapshot:
        """One round trip: each advertiser's config and spend, this user's cap counts per ad and advertiser, the
        publisher's blocked categories."""
        day = today()
        unique = list(dict.fromkeys(advertisers))
        async with self._redis.pipeline(transaction=False) as pipe:
            for adv in unique:
                pipe.hgetall(f"adv:{adv}")
                pipe.get(f"spend:{adv}:{day}")
                pipe.get(f"spend:{adv}:total")
            for ad_id in user_ads:
                pipe.get(f"fcap:{user}:ad:{ad_id}")
            for adv in unique:
                pipe.get(f"fcap:{user}:adv:{adv}")
            pipe.smembers("publisher:blocked")
            pipe.hmget(f"uhist:{user}", ["shown", "clicked"])
            results: list[Any] = await pipe.execute()
        configs, states = {}, {}
        for i, adv in enumerate(unique):
            config = AdvertiserConfig.from_hash(results[3 * i] or {})
            configs[adv] = config
            states[adv] = AdvertiserState(
                daily_budget=config.daily_budget,
                total_budget=config.total_budget,
                spent_today=float(results[3 * i + 1] or 0.0),
                spent_total=float(results[3 * i + 2] or 0.0),
                pacing=config.pacing,
            )
        offset = 3 * len(unique)
        ad_counts = {ad_id: int(results[offset + j] or 0) for j, ad_id in enumerate(user_ads)}
        offset += len(user_ads)
        adv_counts = {adv: int(results[offset + j] or 0) for j, adv in enumerate(unique)}
        blocked = frozenset(m.decode() if isinstance(m, bytes) else m for m in results[-2])
        shown, clicked = (int(v or 0) for v in results[-1])
        return Snapshot(configs, states, ad_counts, adv_counts, blocked, shown, clicked)

    async def count_impression(self, user: str, shown: Sequence[tuple[str, str, int]], auction_id: str) -> None:
        """Count one impression of each shown (ad id, advertiser, window seconds) for ``user``: against the caps,
        in the user's click history, and remember the auction's user for its clicks. One script call."""
        keys: list[str] = []
        args: list[int | str] = []
        for ad_id, adv, window in shown:
            keys += [f"fcap:{user}:ad:{ad_id}", f"fcap:{user}:adv:{adv}"]
            args += [window, window]
        if keys:
            keys += [f"uhist:{user}", f"auser:{auction_id}"]
            args += [len(shown), HISTORY_TTL_S, user, self._click_ttl_s]
            await self._count(keys=keys, args=args)

    async def charge(self, auction_id: str, ad_id: str, advertiser: str, price: float) -> Charge:
        day = today()
        billed, reason = await self._charge(
            keys=[f"billed:{auction_id}:{ad_id}", f"spend:{advertiser}:{day}", f"spend:{advertiser}:total",
                  f"adv:{advertiser}", f"uclick:{auction_id}:{ad_id}", f"auser:{auction_id}"],
            args=[repr(float(price)), DAY_TTL_S, self._click_ttl_s],
        )  # fmt: skip
        return Charge(bool(billed), reason.decode() if isinstance(reason, bytes) else str(reason))
