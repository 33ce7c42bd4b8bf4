from __future__ import annotations

import random

from service.data import ad_category, catalog
from service.mechanism.types import AuctionContext
from service.simulation.contexts import (
    BID_RANGE,
    NO_AD_CATEGORY,
    context_for,
    draw_contexts,
    split_queries,
    sweep_contexts,
    with_bid,
)
from service.training.warm_start import TIP_FIRST_BID_POWER, corpus, sft_examples, teacher_ad, tip_first_answer


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


def test_p3_warm_start_answers_open_with_a_tip_and_place_at_most_one_fitting_ad() -> None:
    """The p3 corpus (tip-first): every answer starts with its question's opening (where it has one) and one of
    its tips, holds at most one marker, of a fitting candidate of its prompt, listed in the prompt's fitting
    group, never before the first tip; off-topic questions get none."""
    by_query = {q["query"]: q for q in corpus()["queries"]}
    categories = {a["id"]: a["category"] for a in catalog()["ads"]}
    asked: dict[str, str] = {}

    def fit_of(context: AuctionContext) -> dict[str, float]:  # the catalogue's truth as the fit score
        category = by_query[context.query]["category"]
        return {ad.id: 0.4 if categories[ad.id] == category else 0.0 for ad in context.ads}

    with_ad = 0
    for example in sft_examples(0, 120, "p3", fit_of):
        system, user = example["prompt"][0]["content"], example["prompt"][1]["content"]
        answer = example["completion"][0]["content"]
        query = by_query[user.split("User question: ")[1]]
        asked[query["id"]] = query["category"]
        opening = f"{query['opening']} " if "opening" in query else ""
        assert any(answer.startswith(opening + tip) for tip in query["tips"])  # it answers first
        assert answer.count("@[") <= 1
        fitting_block = system.split("Ads that fit this question, best first:\n")[1].split("Other ads:")[0]
        if query["category"] == NO_AD_CATEGORY:
            assert "@" not in answer
            assert fitting_block.strip() == "(none)"
            continue
        (marker,) = (line.split(" (bid")[0] for line in fitting_block.splitlines() if line.split(" (bid")[0] in answer)
        assert categories[marker.split("@[")[1].rstrip("]")] == query["category"]
        with_ad += 1
    assert with_ad > 80
    assert NO_AD_CATEGORY in asked.values()


def test_the_tip_first_teacher_is_sharper_in_the_bid() -> None:
    """p = 4: two fitting ads at 100 and 50, the higher is shown with probability 16/17 ≈ 0.94 (2,000 draws: standard
    error ≤ 0.006, bounds ±0.03)."""
    item, swept = sweep_contexts(11, 1)[0]
    rng = random.Random(0)
    high = with_bid(item, swept, 100.0)
    share = sum(teacher_ad(high, rng, TIP_FIRST_BID_POWER).id == swept for _ in range(2000)) / 2000  # type: ignore[union-attr]
    assert abs(share - 16 / 17) < 0.03, share


def test_openings_only_prefix_the_answers_and_restate_the_question() -> None:
    """``openings=False`` is sft-p3's corpus: the same draws, answers without the opening. The openings are what
    lifts the corpus's answer relevance (MiniLM cosine with the question, the audit's measure): over the 53
    openings the mean gain is ≈ 0.19; a set of openings that restated nothing would fail the 0.1 bound."""
    from service.evaluation.metrics import answer_relevance

    by_query = {q["query"]: q for q in corpus()["queries"]}
    plain, opened = sft_examples(5, 60, "p3"), sft_examples(5, 60, "p3", openings=False)
    for with_opening, without in zip(plain, opened, strict=True):
        assert with_opening["prompt"] == without["prompt"]
        query = by_query[with_opening["prompt"][1]["content"].split("User question: ")[1]]
        text, bare = with_opening["completion"][0]["content"], without["completion"][0]["content"]
        if "opening" not in query:
            assert text == bare
            continue
        assert text.startswith(query["opening"] + " ")
        # the same sentences; with an opening, the ad (if any) sits right after the first tip
        assert sorted(text.removeprefix(query["opening"] + " ").split()) == sorted(bare.split())
    gains = [
        answer_relevance(q["query"], [f"{q['opening']} {q['tips'][0]}"])[0]
        - answer_relevance(q["query"], [q["tips"][0]])[0]
        for q in corpus()["queries"]
        if "opening" in q
    ]
    assert len(gains) >= 50
    assert sum(gains) / len(gains) > 0.1, sum(gains) / len(gains)


def test_woven_answers_put_the_teachers_ad_in_the_opening_and_earn_more_from_the_simulated_users() -> None:
    """``woven``: the same draws, the same tips and the same ad, the ad in the opening sentence (position ≈ 0, in a
    sentence about the question) instead of a sentence of its own after the first tip. The simulated users pay
    for that (``Σ_i b_i·P_sim(click i)``, the audit's revenue): measured ≈2× on these 80 contexts; a woven
    answer that left the ad where it was, or wove it into a sentence off the question, would fail the 1.5× bound.
    Answer relevance (markers removed) must not drop."""
    from service.evaluation.metrics import answer_relevance
    from service.simulation.users import click_expectations

    rng = random.Random(3)
    queries = [q for q in corpus()["queries"] if q["category"] != NO_AD_CATEGORY]
    placed: list[float] = []
    woven: list[float] = []
    relevance_gain: list[float] = []
    for _ in range(80):
        query = rng.choice(queries)
        item = context_for(rng, query)
        state = rng.getstate()
        texts = []
        for weave in (False, True):
            rng.setstate(state)
            texts.append(tip_first_answer(item, list(query["tips"]), rng, query["opening"], woven=weave))
        plain, weaved = texts
        bids = {a.id: a.bid for a in item.context.ads}
        if "@[" not in plain:
            assert plain == weaved  # no fitting ad, no ad: nothing to weave
            continue
        stem = query["opening"].rstrip(".!? ")
        first = weaved.split(". ")[0]
        assert weaved.startswith(stem)
        assert "@[" in first
        assert weaved.count("@[") == 1
        assert plain.split("@[")[1][:8] == weaved.split("@[")[1][:8]  # the same ad
        assert all(tip in weaved for tip in query["tips"] if tip in plain)
        for text, values in ((plain, placed), (weaved, woven)):
            values.append(sum(bids[i] * p for i, p in click_expectations(item.context, text).items()))
        before, after = answer_relevance(item.context.query, [plain, weaved])
        relevance_gain.append(after - before)
    assert len(placed) > 50
    print(f"woven {sum(woven) / len(woven):.2f}, placed {sum(placed) / len(placed):.2f}, n {len(placed)}")
    assert sum(woven) > 1.5 * sum(placed), (sum(woven) / len(woven), sum(placed) / len(placed))
    assert sum(relevance_gain) / len(relevance_gain) > -0.02


def test_the_off_topic_share_sets_how_often_the_warm_start_answers_without_an_ad() -> None:
    """``off_topic``: that share of the examples asks a question no ad fits, and those answers carry no marker;
    ``None`` draws the questions uniformly (8 of 56 off-topic, 14 %). 600 examples: the share's standard error at
    0.3 is 0.019, so ±0.06 bounds it at 3 standard errors and the uniform stream (0.14) falls outside."""
    by_query = {q["query"]: q for q in corpus()["queries"]}

    def off_topic_answers(examples: list[dict[str, object]]) -> list[str]:
        off = []
        for example in examples:
            query = by_query[example["prompt"][1]["content"].split("User question: ")[1]]  # type: ignore[index]
            if query["category"] == NO_AD_CATEGORY:
                off.append(example["completion"][0]["content"])  # type: ignore[index]
        return off

    raised = off_topic_answers(sft_examples(3, 600, "p3", woven=True, off_topic=0.3))
    uniform = off_topic_answers(sft_examples(3, 600, "p3", woven=True))
    assert abs(len(raised) / 600 - 0.3) < 0.06, len(raised)
    assert abs(len(uniform) / 600 - 8 / 56) < 0.06, len(uniform)
    assert raised
    assert not any("@[" in text for text in raised)
    everything = sft_examples(3, 200, "p3", woven=True, off_topic=1.0)
    assert len(off_topic_answers(everything)) == 200
    assert not off_topic_answers(sft_examples(3, 200, "p3", woven=True, off_topic=0.0))
