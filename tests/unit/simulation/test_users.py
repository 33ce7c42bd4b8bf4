from __future__ import annotations

from service.mechanism.types import Ad, AuctionContext
from service.simulation.users import ClickModel, click_probabilities, simulate_clicks

ADS = (
    Ad("Ad-1", "ArchGuard Stability Runner", "https://example.com/running/archguard-stability-runner", 30.0),
    Ad("Ad-2", "CloudStep Running Insoles", "https://example.com/running/cloudstep-running-insoles", 20.0),
    Ad("Ad-3", "BrewMaster Burr Grinder", "https://example.com/coffee/brewmaster-burr-grinder", 50.0),
)


QUESTION = "I have flat feet and want to start running. What should I look for in a shoe?"  # catalogue q001


def context(user: str = "u1") -> AuctionContext:
    return AuctionContext(QUESTION, user, {"interests": ["cooking"]}, ADS)


def rate(answer: str, ad_id: str, users: int = 400) -> float:
    clicks = sum(ad_id in simulate_clicks(context(f"u{i}"), answer, f"a{i}") for i in range(users))
    return clicks / users


def test_relevant_native_ads_are_clicked_far_more_than_irrelevant_ones() -> None:
    relevant = "For running with flat feet, the @ArchGuard Stability Runner@[Ad-1] is a stable shoe."
    irrelevant = "For running with flat feet, the @BrewMaster Burr Grinder@[Ad-3] is a stable shoe."
    assert rate(relevant, "Ad-1") > 3 * rate(irrelevant, "Ad-3")
    assert rate(relevant, "Ad-1") > 0.2


def test_a_flooded_answer_gets_no_click() -> None:
    flooded = "@ArchGuard Stability Runner@[Ad-1] @CloudStep Running Insoles@[Ad-2] @BrewMaster Burr Grinder@[Ad-3]"
    assert all(simulate_clicks(context(f"u{i}"), flooded, f"a{i}") == [] for i in range(100))
    # The same answer is clickable for a user model that tolerates more ads.
    tolerant = ClickModel(intercept=2.0, flood_threshold=4)
    assert any(simulate_clicks(context(f"u{i}"), flooded, f"a{i}", tolerant) for i in range(100))


def test_competing_ads_get_at_most_one_click() -> None:
    both = "Running shoe: @ArchGuard Stability Runner@[Ad-1]. Running insoles: @CloudStep Running Insoles@[Ad-2]."
    for i in range(300):
        clicked = simulate_clicks(context(f"u{i}"), both, f"a{i}", ClickModel(intercept=2.0))
        assert len(clicked) <= 1  # both are "running" ads: competitors


def test_clicks_are_seeded_and_probabilities_bounded() -> None:
    answer = "For running, @ArchGuard Stability Runner@[Ad-1] fits flat feet."
    assert simulate_clicks(context(), answer, "a1", seed=5) == simulate_clicks(context(), answer, "a1", seed=5)
    probabilities = click_probabilities(context(), answer)
    assert set(probabilities) == {"Ad-1"}
    assert 0.0 < probabilities["Ad-1"] <= 1.0
    assert click_probabilities(context(), "No ads in this answer.") == {}


def test_click_expectations_are_the_frequencies_simulate_clicks_draws() -> None:
    from service.simulation.users import click_expectations

    both = "Running shoe: @ArchGuard Stability Runner@[Ad-1]. Running insoles: @CloudStep Running Insoles@[Ad-2]."
    model = ClickModel(intercept=1.0)
    user = context("u7")
    expected = click_expectations(user, both, model)
    draws = 4000
    counts = {"Ad-1": 0, "Ad-2": 0}
    for i in range(draws):
        for ad_id in simulate_clicks(user, both, f"a{i}", model):
            counts[ad_id] += 1
    for ad_id, p in expected.items():
        assert abs(counts[ad_id] / draws - p) < 4 * (p * (1 - p) / draws) ** 0.5 + 1e-9
    # Competition: together they are clicked less often than their independent probabilities say.
    independent = click_probabilities(user, both, model)
    assert expected["Ad-2"] < independent["Ad-2"] or expected["Ad-1"] < independent["Ad-1"]


def test_a_flooded_answer_is_expected_to_get_no_click() -> None:
    from service.simulation.users import click_expectations

    flooded = "@ArchGuard Stability Runner@[Ad-1] @CloudStep Running Insoles@[Ad-2] @BrewMaster Burr Grinder@[Ad-3]"
    assert click_expectations(context(), flooded) == {"Ad-1": 0.0, "Ad-2": 0.0, "Ad-3": 0.0}


def test_relevance_is_semantic_and_grounded_in_the_catalogue_not_in_shared_words() -> None:
    """Round 1's users scored the Copper Pan Set 0 for a question about pans for searing steak (no shared word)."""
    pans = Ad("Ad-7006", "Copper Pan Set 10-Piece", "https://example.com/kitchen/copper-pan-set-10-piece", 20.0)
    espresso = Ad("Ad-7027", "SteamLine Espresso Machine", "https://example.com/coffee/steamline-espresso-machine", 20)
    question = "What pans are best for searing steak at home?"  # catalogue q004: kitchen
    user = AuctionContext(question, "u1", {}, (pans, espresso))
    p_pans = click_probabilities(user, "For a good sear, @Copper Pan Set 10-Piece@[Ad-7006] heats evenly.")["Ad-7006"]
    p_espresso = click_probabilities(user, "For a good sear, @SteamLine Espresso Machine@[Ad-7027] helps.")["Ad-7027"]
    assert p_pans > 5 * p_espresso
    # The documented range: relevant and woven in ≈10–40 %, irrelevant ≈1–3 %.
    assert 0.08 < p_pans / 1.0 < 0.8
    assert p_espresso < 0.04
