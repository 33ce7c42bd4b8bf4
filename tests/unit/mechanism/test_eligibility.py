from __future__ import annotations

from service.mechanism.eligibility import AdvertiserState, Facts, Reason, decide, is_minor
from service.mechanism.types import Ad

ADS = (
    Ad("A1", "Shoe", "https://e.com/running/shoe", 30.0, advertiser_id="adv1"),
    Ad("A2", "Insole", "https://e.com/running/insole", 5.0, advertiser_id="adv2"),
    Ad("A3", "Grinder", "https://e.com/coffee/grinder", 50.0, advertiser_id="adv3"),
)
CATEGORIES = {"A1": "running", "A2": "running", "A3": "coffee"}


def reasons(facts: Facts, profile: dict[str, object] | None = None) -> dict[str, str | None]:
    verdict = decide(ADS, profile or {}, facts)
    out: dict[str, str | None] = {ad.id: None for ad in verdict.eligible}
    out.update({ad.id: reason.value for ad, reason in verdict.ineligible})
    return out


def test_everything_runs_without_limits() -> None:
    assert reasons(Facts(category=CATEGORIES)) == {"A1": None, "A2": None, "A3": None}


def test_a_sensitive_question_or_a_minor_gets_no_ads() -> None:
    assert set(reasons(Facts(sensitive_topic="health")).values()) == {Reason.SENSITIVE_TOPIC.value}
    assert set(reasons(Facts(), {"age": 15}).values()) == {Reason.MINOR.value}
    assert set(reasons(Facts(), {"age": "16"}).values()) == {Reason.MINOR.value}
    assert is_minor({"age": 17.9})
    assert not is_minor({"age": 18})
    assert not is_minor({"age": "unknown"})
    assert not is_minor({})


def test_reserve_blocked_categories_and_advertiser_exclusions() -> None:
    facts = Facts(
        reserve_price=10.0,
        blocked_categories=frozenset({"coffee"}),
        category=CATEGORIES,
        query_topic="running",
        excluded_topics={"A1": frozenset({"running"})},
    )
    assert reasons(facts) == {"A1": "advertiser_excluded", "A2": "below_reserve", "A3": "blocked_category"}


def test_budgets_pacing_and_caps() -> None:
    facts = Facts(
        category=CATEGORIES,
        advertisers={
            "adv1": AdvertiserState(daily_budget=50.0, spent_today=50.0),  # spent
            "adv2": AdvertiserState(daily_budget=100.0, spent_today=60.0, pacing=True),  # ahead of a half day
            "adv3": AdvertiserState(total_budget=500.0, spent_total=100.0, daily_budget=100.0, spent_today=10.0),
        },
        capped=frozenset({"A3"}),
        day_fraction=0.5,
    )
    assert reasons(facts) == {"A1": "budget_exhausted", "A2": "paced", "A3": "frequency_capped"}
    on_pace = Facts(advertisers={"adv2": AdvertiserState(daily_budget=100.0, spent_today=40.0, pacing=True)},
                    day_fraction=0.5)  # fmt: skip
    assert reasons(on_pace)["A2"] is None
    total = Facts(advertisers={"adv3": AdvertiserState(total_budget=100.0, spent_total=100.0)})
    assert reasons(total)["A3"] == "budget_exhausted"
