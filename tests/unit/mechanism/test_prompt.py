from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import pytest

from service.mechanism.prompt import (
    FIT_THRESHOLD,
    PROMPT_VERSION,
    Message,
    build_prompt,
    format_bid,
    format_or_default,
    listing,
    placeable,
    prompt_format,
    prompt_hash,
)
from service.mechanism.types import Ad, AuctionContext


def join(messages: Sequence[Message]) -> str:
    return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)


def test_same_context_gives_same_bytes_and_hash(context: AuctionContext) -> None:
    first = build_prompt(context, join)
    # A fresh but equal context, with the profile's keys in another order, must give the same prompt.
    second = build_prompt(
        dataclasses.replace(context, profile={"interests": ["audio", "coffee", "pets"], "age": 38}), join
    )
    assert first.text == second.text
    assert first.hash == second.hash == prompt_hash(first.text)
    assert len(first.hash) == 64


def test_hash_changes_with_any_bid(context: AuctionContext) -> None:
    raised = dataclasses.replace(context, ads=(dataclasses.replace(context.ads[0], bid=36.0), *context.ads[1:]))
    assert build_prompt(context, join).hash != build_prompt(raised, join).hash


def test_prompt_holds_every_candidate_as_json_with_bid(context: AuctionContext) -> None:
    system = build_prompt(context, join).messages[0]["content"]
    lines = [json.loads(line) for line in system.splitlines() if line.startswith("{")]
    assert lines == [
        {"Ad ID": "Ad-7001", "Ad Title": "ArchGuard Stability Runner", "Ad Bid": "35"},
        {"Ad ID": "Ad-7002", "Ad Title": "CloudStep Orthotic Insoles", "Ad Bid": "12.5"},
        {"Ad ID": "Ad-9001", "Ad Title": "BrewMaster Burr Grinder", "Ad Bid": "60"},
    ]
    assert "@Ad Title@[Ad ID]" in system


def test_user_message_holds_profile_then_question(context: AuctionContext) -> None:
    user = build_prompt(context, join).messages[1]["content"]
    assert user == (
        'User profile: {"age": 38, "interests": ["audio", "coffee", "pets"]}\n'
        "User question: I have flat feet and want to start running. What should I look for in a shoe?"
    )


def test_renderer_output_is_the_prompt_text(context: AuctionContext) -> None:
    prompt = build_prompt(context, join)
    assert prompt.text == join(prompt.messages)
    assert prompt.text.startswith("<system>")
    assert prompt.text.endswith("</user>")


def test_format_bid() -> None:
    assert format_bid(100) == "100"
    assert format_bid(35.5) == "35.5"
    assert format_bid(0.1 + 0.2) == "0.3"
    assert format_bid(0) == "0"
    assert format_bid(1e5) == "100000"
    assert format_bid(7.25) == "7.25"


def test_p2_lists_each_candidate_as_its_marker_then_its_bid(context: AuctionContext) -> None:
    prompt = build_prompt(context, join, fmt="p2")
    system = prompt.messages[0]["content"]
    listed = [line for line in system.splitlines() if line.startswith("@")]
    assert listed == [f"{ad.marker} (bid {format_bid(ad.bid)})" for ad in context.ads]
    assert listed[1] == "@CloudStep Orthotic Insoles@[Ad-7002] (bid 12.5)"
    assert prompt.version == "p2"
    blind = build_prompt(context, join, bids=False, fmt="p2")
    assert [line for line in blind.messages[0]["content"].splitlines() if line.startswith("@")] == [
        ad.marker for ad in context.ads
    ]
    assert blind.version == "p2-blind"
    assert prompt.messages[1] == build_prompt(context, join).messages[1]  # the user turn does not change
    assert prompt.hash != build_prompt(context, join).hash  # a p1 model's cached samples are not reused


def test_prompt_version_names_and_unknown_format(context: AuctionContext) -> None:
    assert build_prompt(context, join).version == "p1"
    assert build_prompt(context, join, bids=False).version == "p1-blind"
    assert prompt_format("p2") == "p2"
    with pytest.raises(ValueError, match="unknown prompt format 'p4'"):
        prompt_format("p4")
    assert format_or_default(None) == PROMPT_VERSION == "p1"
    assert format_or_default("p2") == "p2"
    with pytest.raises(ValueError, match="unknown prompt format 'p4'"):
        format_or_default("p4")


# The running shoe and the insoles fit the flat-feet question, the grinder does not (sim to the question's topic).
FIT = {"Ad-7001": 0.41, "Ad-7002": 0.30, "Ad-9001": 0.02}


def listed(prompt_text: str) -> list[str]:
    return [line for line in prompt_text.splitlines() if line.startswith(("@", "Ads that fit", "Other ads", "(none)"))]


def test_p3_ranks_fitting_ads_first_each_group_by_bid(context: AuctionContext) -> None:
    prompt = build_prompt(context, join, fmt="p3", fit=FIT)
    assert listed(prompt.messages[0]["content"]) == [
        "Ads that fit this question, best first:",
        "@ArchGuard Stability Runner@[Ad-7001] (bid 35)",
        "@CloudStep Orthotic Insoles@[Ad-7002] (bid 12.5)",
        "Other ads:",
        "@BrewMaster Burr Grinder@[Ad-9001] (bid 60)",  # the highest bid, but it does not fit: listed last
    ]
    assert prompt.version == "p3"
    assert dict(prompt.fit) == FIT  # logged with the impression, so the prompt can be rebuilt for training
    # The insoles outbid the shoe: they move up within their group; the grinder stays in its own.
    raised = dataclasses.replace(
        context, ads=(context.ads[0], dataclasses.replace(context.ads[1], bid=80.0), context.ads[2])
    )
    assert listed(build_prompt(raised, join, fmt="p3", fit=FIT).messages[0]["content"])[1:3] == [
        "@CloudStep Orthotic Insoles@[Ad-7002] (bid 80)",
        "@ArchGuard Stability Runner@[Ad-7001] (bid 35)",
    ]
    # Bid-blind: the same groups ranked by fit, no bids, and a bid change leaves the prompt as it was.
    blind = build_prompt(context, join, bids=False, fmt="p3", fit=FIT)
    assert listed(blind.messages[0]["content"]) == [
        "Ads that fit this question, best first:",
        "@ArchGuard Stability Runner@[Ad-7001]",
        "@CloudStep Orthotic Insoles@[Ad-7002]",
        "Other ads:",
        "@BrewMaster Burr Grinder@[Ad-9001]",
    ]
    assert build_prompt(raised, join, bids=False, fmt="p3", fit=FIT).hash == blind.hash
    # Nothing fits (or no scores): the fitting group says so and every ad is an "other".
    none_fit = listed(build_prompt(context, join, fmt="p3").messages[0]["content"])
    assert none_fit[:3] == ["Ads that fit this question, best first:", "(none)", "Other ads:"]
    assert build_prompt(context, join, fmt="p3", fit=FIT).hash != build_prompt(context, join, fmt="p2").hash


def test_p3_rank_never_falls_when_an_ads_own_bid_rises() -> None:
    """Allocation monotonicity needs the listing's part of it: for every ad, every fit and every pair of bids, the
    ad's position at the higher bid is at or above its position at the lower one (all 5 ads × 6 bids × 3 fits)."""
    ads = tuple(
        Ad(id=f"Ad-{i}", title=f"T{i}", url="https://x.test/", bid=b) for i, b in enumerate([5, 20, 20, 50, 90])
    )
    fit = {"Ad-0": 0.5, "Ad-1": 0.2, "Ad-2": FIT_THRESHOLD, "Ad-3": 0.05, "Ad-4": 0.1}

    def position(ads: tuple[Ad, ...], ad_id: str) -> int:
        fitting, other = listing(ads, fit)
        return [a.id for a in (*fitting, *other)].index(ad_id)

    for i in range(len(ads)):
        positions = [
            position(tuple(dataclasses.replace(a, bid=bid) if k == i else a for k, a in enumerate(ads)), ads[i].id)
            for bid in (0.0, 1.0, 20.0, 20.01, 60.0, 100.0)
        ]
        assert positions == sorted(positions, reverse=True), (i, positions)
    # FIT_THRESHOLD itself fits; a tie in bid is broken by fit, then id: a total, deterministic order.
    fitting, other = listing(ads, fit)
    assert [a.id for a in fitting] == ["Ad-1", "Ad-2", "Ad-0"]
    assert [a.id for a in other] == ["Ad-4", "Ad-3"]


def test_the_relevance_floor_places_only_fitting_ads_whatever_their_bids() -> None:
    """``placeable``: with the floor, the ads at or above FIT_THRESHOLD, in their order; without it (or without fit
    scores) every candidate. Whether an ad can be placed never depends on bids (any bid of any ad, 0 to 100), so
    the floor keeps the allocation monotone."""
    ads = tuple(Ad(id=f"Ad-{i}", title=f"T{i}", url="https://x.test/", bid=b) for i, b in enumerate([5, 20, 50, 90]))
    fit = {"Ad-0": 0.5, "Ad-1": FIT_THRESHOLD, "Ad-2": FIT_THRESHOLD - 1e-6}  # Ad-3 has no score: it does not fit
    assert [a.id for a in placeable(ads, fit, floor=True)] == ["Ad-0", "Ad-1"]
    assert placeable(ads, fit, floor=False) == ads
    assert placeable(ads, None, floor=True) == ads
    assert placeable(ads, {}, floor=True) == ()
    for i in range(len(ads)):
        for bid in (0.0, 1.0, 50.0, 100.0):
            rebid = tuple(dataclasses.replace(a, bid=bid) if k == i else a for k, a in enumerate(ads))
            assert [a.id for a in placeable(rebid, fit, floor=True)] == ["Ad-0", "Ad-1"]
