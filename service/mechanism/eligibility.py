"""Which candidate ads may run in an auction, decided before the prompt is built (a dropped ad is never shown and
then hidden). Pure: the caller brings the facts (the query's topic verdict, the advertisers' budget, pacing and
frequency state read from Redis) and gets each ad's verdict with a reason code.

Reason codes (``Reason``), checked in this order, the first that applies wins:
- ``sensitive_topic``  the question is about a topic where no ad runs (health, mental health, politics, or a
                       deployment's own list): every ad;
- ``minor``            the user's profile says they are under 18: every ad;
- ``below_reserve``    the bid is below the reserve price per click (deployment or request);
- ``blocked_category`` the publisher blocked the ad's category in this request;
- ``advertiser_excluded`` the advertiser excluded the question's topic (brand safety on its side);
- ``budget_exhausted`` the advertiser's daily or total budget is spent;
- ``paced``            even pacing: the advertiser has spent more of its daily budget than the elapsed share of the day;
- ``frequency_capped`` this user has seen the ad (or the advertiser) as often as the cap allows in the window;
- ``controls_unavailable`` the state above could not be read (Redis down): no ad runs, the answer is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from service.mechanism.types import Ad

ADULT_AGE = 18


class Reason(StrEnum):
    SENSITIVE_TOPIC = "sensitive_topic"
    MINOR = "minor"
    BELOW_RESERVE = "below_reserve"
    BLOCKED_CATEGORY = "blocked_category"
    ADVERTISER_EXCLUDED = "advertiser_excluded"
    BUDGET_EXHAUSTED = "budget_exhausted"
    PACED = "paced"
    FREQUENCY_CAPPED = "frequency_capped"
    CONTROLS_UNAVAILABLE = "controls_unavailable"  # Redis could not say: no ad that could overspend runs


@dataclass(frozen=True, slots=True)
class AdvertiserState:
    """What Redis knows of an advertiser right now (``None``: no limit set)."""

    daily_budget: float | None = None
    total_budget: float | None = None
    spent_today: float = 0.0
    spent_total: float = 0.0
    pacing: bool = False


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the eligibility rules read for one auction."""

    sensitive_topic: str | None = None  # the topic the query was flagged for, if any
    query_topic: str | None = None  # the question's ad category (e.g. "audio"), for advertiser exclusions
    reserve_price: float = 0.0
    blocked_categories: frozenset[str] = frozenset()
    category: Mapping[str, str] = field(default_factory=dict)  # ad id → ad category
    excluded_topics: Mapping[str, frozenset[str]] = field(default_factory=dict)  # ad id → topics its advertiser avoids
    advertisers: Mapping[str, AdvertiserState] = field(default_factory=dict)  # advertiser id → state
    capped: frozenset[str] = frozenset()  # ad ids at their frequency cap for this user
    day_fraction: float = 1.0  # the share of the advertiser's day that has passed (pacing)


@dataclass(frozen=True, slots=True)
class Verdict:
    eligible: tuple[Ad, ...]
    ineligible: tuple[tuple[Ad, Reason], ...]


def is_minor(profile: Mapping[str, Any]) -> bool:
    """The profile says the user is under 18 (an ``age`` field, a number or numeric text)."""
    age = profile.get("age")
    try:
        return age is not None and float(age) < ADULT_AGE
    except (TypeError, ValueError):
        return False


def advertiser_key(ad: Ad) -> str:
    return ad.advertiser_id or ad.id


def _budget_reason(state: AdvertiserState | None, day_fraction: float) -> Reason | None:
    if state is None:
        return None
    if state.total_budget is not None and state.spent_total >= state.total_budget:
        return Reason.BUDGET_EXHAUSTED
    if state.daily_budget is not None:
        if state.spent_today >= state.daily_budget:
            return Reason.BUDGET_EXHAUSTED
        if state.pacing and state.spent_today > state.daily_budget * day_fraction:
            return Reason.PACED
    return None


def decide(ads: Sequence[Ad], profile: Mapping[str, Any], facts: Facts) -> Verdict:
    eligible: list[Ad] = []
    ineligible: list[tuple[Ad, Reason]] = []
    everyone = Reason.SENSITIVE_TOPIC if facts.sensitive_topic else Reason.MINOR if is_minor(profile) else None
    for ad in ads:
        reason = everyone
        if reason is None and ad.bid < facts.reserve_price:
            reason = Reason.BELOW_RESERVE
        if reason is None and facts.category.get(ad.id) in facts.blocked_categories:
            reason = Reason.BLOCKED_CATEGORY
        if reason is None and facts.query_topic and facts.query_topic in facts.excluded_topics.get(ad.id, frozenset()):
            reason = Reason.ADVERTISER_EXCLUDED
        if reason is None:
            reason = _budget_reason(facts.advertisers.get(advertiser_key(ad)), facts.day_fraction)
        if reason is None and ad.id in facts.capped:
            reason = Reason.FREQUENCY_CAPPED
        if reason is None:
            eligible.append(ad)
        else:
            ineligible.append((ad, reason))
    return Verdict(tuple(eligible), tuple(ineligible))
