from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import pytest

from service.mechanism.prompt import (
    PROMPT_VERSION,
    Message,
    build_prompt,
    format_bid,
    format_or_default,
    prompt_format,
    prompt_hash,
)
from service.mechanism.types import AuctionContext


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
    with pytest.raises(ValueError, match="unknown prompt format 'p3'"):
        prompt_format("p3")
    assert format_or_default(None) == PROMPT_VERSION == "p1"
    assert format_or_default("p2") == "p2"
    with pytest.raises(ValueError, match="unknown prompt format 'p3'"):
        format_or_default("p3")
