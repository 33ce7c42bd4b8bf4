from __future__ import annotations

import random

from service.data import ad_category, catalog
from service.simulation.contexts import (
    BID_RANGE,
    NO_AD_CATEGORY,
    draw_contexts,
    split_queries,
    sweep_contexts,
    with_bid,
)
from service.training.warm_start import corpus, sft_examples, teacher_ad


def test_the_query_split_is_disjoint_and_covers_every_category() -> None:
    train = {q["id"] for q in split_queries("train")}
    heldout = {q["id"] for q in split_queries("heldout")}
    assert not train & heldout
    assert train | heldout == {q["id"] for q in catalog()["queries"]}
    categories = {q["category"] for q in catalog()["queries"]}
    assert {q["category"] for q in split_queries("heldout")} == categories
    warm = {q["id"] for q in corpus()["queries"]}
    assert not warm & heldout  # the warm start never sees a held-out question
    assert not {q["query"] for q in corpus()["queries"]} & {q["query"] for q in split_queries("heldout")}
    assert train <= warm  # and it answers every training question
    assert {q["category"] for q in corpus()["queries"]} == categories
    assert all(q["tips"] for q in corpus()["queries"])


def test_contexts_are_seeded_and_mix_relevant_and_other_ads() -> None:
    first, again = draw_contexts(3, 40, "train"), draw_contexts(3, 40, "train")
    assert first == again
    assert first != draw_contexts(4, 40, "train")
    for item in first:
        ads = item.context.ads
        assert len(ads) == 4
        assert len({a.id for a in ads}) == 4
        assert all(BID_RANGE[0] <= a.bid <= BID_RANGE[1] for a in ads)
        relevant = [a for a in ads if ad_category(a) == item.category]
        assert len(relevant) == (0 if item.category == NO_AD_CATEGORY else 2)
        assert item.relevant_ids == {a.id for a in relevant}
        body = item.request(samples=4)
        assert body["options"] == {"samples": 4}
        assert body["query"] == item.context.query


def test_sweep_contexts_fix_the_competing_relevant_ad_at_50() -> None:
    for item, swept in sweep_contexts(5, 12):
        assert item.category != NO_AD_CATEGORY
        assert swept in item.relevant_ids
        other = next(a for a in item.context.ads if a.id in item.relevant_ids and a.id != swept)
        assert other.bid == 50.0
        assert item.query_id in {q["id"] for q in split_queries("heldout")}


def test_warm_start_answers_place_one_relevant_ad_of_the_prompt() -> None:
    query_category = {q["query"]: q["category"] for q in corpus()["queries"]}
    ads = {a["id"]: a for a in catalog()["ads"]}
    with_ad = 0
    for example in sft_examples(0, 80):
        system, user = example["prompt"][0]["content"], example["prompt"][1]["content"]
        answer = example["completion"][0]["content"]
        category = query_category[user.split("User question: ")[1]]
        markers = [m for m in ads.values() if f"@{m['title']}@[{m['id']}]" in answer]
        if category == NO_AD_CATEGORY:
            assert "@" not in answer
            continue
        with_ad += 1
        assert len(markers) == 1
        assert answer.count("@[") == 1
        (ad,) = markers
        assert ad["category"] == category  # relevant to the question
        assert f'"Ad ID": "{ad["id"]}", "Ad Title": "{ad["title"]}"' in system  # one of this prompt's candidates
        tips = next(q["tips"] for q in corpus()["queries"] if q["query"] == user.split("User question: ")[1])
        assert any(tip in answer for tip in tips)  # the answer answers the question first
    assert 0 < with_ad < 80  # off-topic questions get no ad


def test_the_warm_start_teacher_follows_bids() -> None:
    """Two fitting ads, one at 50: the teacher shows the other with probability b²/(b² + 50²). Over 2,000 draws
    per bid the share's standard error is ≤ 0.011, so the asserted bounds (±0.04) fail only on a wrong rule."""
    for item, swept in sweep_contexts(11, 6):
        rng = random.Random(item.query_id)
        for bid, expected in ((1.0, 0.0004), (50.0, 0.5), (100.0, 0.8)):
            swept_item = with_bid(item, swept, bid)
            share = sum((ad := teacher_ad(swept_item, rng)) is not None and ad.id == swept for _ in range(2000)) / 2000
            assert abs(share - expected) < 0.04, (bid, share)
    off_topic = next(i for i in draw_contexts(0, 200, "train") if i.category == NO_AD_CATEGORY)
    assert teacher_ad(off_topic, random.Random(0)) is None
