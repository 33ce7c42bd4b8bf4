"""The controls around one auction, with their I/O: eligibility before the prompt (topic gate, minors, reserve,
blocked categories, advertiser exclusions, budgets and pacing, frequency caps — decided by the pure
``service.mechanism.eligibility``), counting the served impression against the caps, billing a click.

Redis trouble never blocks an answer, and never lets money or caps slip: if the state cannot be read, every ad is
kept out (reason ``controls_unavailable``, counted) and the answer is served without ads.
A click that cannot be billed (Redis down) still redirects; it is logged with ``billed: false``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from service.controls.store import AdvertiserConfig, Charge, ControlStore, day_fraction
from service.controls.topics import TopicGate
from service.data import ad_category, query_category
from service.mechanism.eligibility import Facts, Reason, Verdict, advertiser_key, decide
from service.mechanism.relevance import USER_PRIOR_RATE, user_click_rate
from service.mechanism.types import Ad, AuctionContext
from service.observability import metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    """The deployment's defaults (settings); advertisers override caps through the admin API."""

    reserve_price: float = 0.0
    frequency_cap: int = 0  # impressions per user and ad in the window; 0: none
    frequency_window_s: int = 24 * 3600


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    topic: str | None
    configs: dict[str, AdvertiserConfig]
    user_click_rate: float = USER_PRIOR_RATE  # when the history is unavailable


class Controls:
    def __init__(self, store: ControlStore, gate: TopicGate, limits: Limits) -> None:
        self.store = store
        self._gate = gate
        self._limits = limits

    async def decide(
        self,
        context: AuctionContext,
        reserve_price: float | None,
        blocked: Sequence[str],
        ad_categories: dict[str, str],
    ) -> Decision:
        """Which candidates may run. ``ad_categories``: the request's own categories, else the catalogue's rule."""
        # A seen query (every cache hit) is a few µs inline; a new one is an encoder pass, off the event loop.
        if self._gate.cheap(context.query):
            flagged = self._gate.check(context.query)
        else:
            flagged = await asyncio.to_thread(self._gate.check, context.query)
        categories = {ad.id: ad_categories.get(ad.id) or ad_category(ad) for ad in context.ads}
        advertisers = [advertiser_key(ad) for ad in context.ads]
        try:
            snapshot = await self.store.snapshot(advertisers, [ad.id for ad in context.ads], context.user_id)
        except RedisError:
            metrics.REDIS_ERRORS.labels("controls_read").inc()
            logger.warning("controls state unavailable: serving the answer without ads")
            ineligible = tuple((ad, Reason.CONTROLS_UNAVAILABLE) for ad in context.ads)
            return Decision(Verdict((), ineligible), flagged[0] if flagged else None, {})
        capped = set()
        for ad in context.ads:
            config = snapshot.configs.get(advertiser_key(ad))
            cap = config.cap if config is not None and config.cap is not None else self._limits.frequency_cap
            if cap and snapshot.ad_counts.get(ad.id, 0) >= cap:
                capped.add(ad.id)
            adv_cap = config.advertiser_cap if config is not None else None
            if adv_cap and snapshot.advertiser_counts.get(advertiser_key(ad), 0) >= adv_cap:
                capped.add(ad.id)
        facts = Facts(
            sensitive_topic=flagged[0] if flagged else None,
            query_topic=query_category(context.query),
            reserve_price=max(self._limits.reserve_price, reserve_price or 0.0),
            blocked_categories=snapshot.blocked | frozenset(blocked),
            category=categories,
            excluded_topics={
                ad.id: frozenset(snapshot.configs[advertiser_key(ad)].excluded_topics) for ad in context.ads
            },
            advertisers=snapshot.states,
            capped=frozenset(capped),
            day_fraction=day_fraction(),
        )
        verdict = decide(context.ads, context.profile, facts)
        for _, reason in verdict.ineligible:
            metrics.INELIGIBLE_ADS.labels(reason.value).inc()
        rate = user_click_rate(snapshot.user_shown, snapshot.user_clicked)
        return Decision(verdict, facts.sensitive_topic, dict(snapshot.configs), rate)

    async def count_impression(
        self, context: AuctionContext, shown: Sequence[Ad], configs: dict[str, AdvertiserConfig], auction_id: str
    ) -> None:
        """The served answer showed these ads to this user: count them against the caps (background work)."""
        entries = []
        for ad in shown:
            config = configs.get(advertiser_key(ad))
            window = (
                config.cap_window_s if config is not None and config.cap_window_s else self._limits.frequency_window_s
            )
            entries.append((ad.id, advertiser_key(ad), window))
        try:
            await self.store.count_impression(context.user_id, entries, auction_id)
        except RedisError:
            metrics.REDIS_ERRORS.labels("controls_count").inc()

    async def charge(self, auction_id: str, ad_id: str, advertiser: str, price: float) -> Charge:
        try:
            charge = await self.store.charge(auction_id, ad_id, advertiser, price)
        except RedisError:
            metrics.REDIS_ERRORS.labels("controls_charge").inc()
            charge = Charge(False, "unavailable")
        metrics.CLICK_BILLING.labels(charge.reason).inc()
        if charge.billed:
            metrics.SPEND.inc(price)
        return charge
