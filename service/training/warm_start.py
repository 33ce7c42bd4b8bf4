"""Warm-start data (pure): synthetic answers that teach a useful answer, the marker format and the bids.

The paper starts IRPO from an instruct model that already answers well and writes ``@Title@[ID]``; the bundled
135M model does neither (0 % valid markers, ../shared/notes/irpo-feasibility.md). Round 1's warm start placed a
*random* relevant ad, which taught the model that bids do not matter (docs/irpo.md: pooled bid slope ≈ 0).
Each example here is a context in the service's exact prompt (``build_messages``, bids included) and an answer
that first answers the question — one or two tips from ``data/answers.json``, written per question, for the
catalogue's training questions and for training-only questions of every category — and then, when the context
holds an ad that fits, places the ad a **bid-aware teacher** picks:

    P(ad i) = b_i^p · 1(a_i fits) / Σ_j b_j^p · 1(a_j fits),   p = ``BID_POWER`` = 2

(relevance is the catalogue's category: an ad of the question's category fits). With two fitting ads, one at
bid 50, the teacher shows the other with probability 0.0004 at bid 1, 0.5 at 50 and 0.8 at 100: an exposure
slope of ≈ +0.8 from bid 1 to 100 for the model to imitate, four times the issue's target for the trained
model. No ad fits ⇒ no ad. The ad's sentence comes in ten wordings, before, between or after the tips.
Format: TRL's conversational prompt/completion, so the loss covers the answer only. Held-out questions have no
entry in the corpus (a test checks it), so the audit asks what the warm start never saw.

**Tip-first answers** (the ``p3`` warm start, ``TIP_FIRST_FORMATS``): the held-out audit of the ``p2`` lineage
found answers that were ad sentences with few tips (0.9 ads per answer, answer relevance 0.50 against the base
model's 0.65) and half of the shown ads off-category. So a ``p3`` answer always opens with a tip, places **at
most one** ad, after the first tip or at the end, and its teacher is sharper, ``p = TIP_FIRST_BID_POWER = 4``
(two fitting ads at 100 and 50: the higher shown with probability 0.94; at 60 and 50: 0.67). ``p3`` prompts rank
the fitting ads first, highest bid first (``service.mechanism.prompt.listing``), so what the model sees and
what the teacher does agree: the ad to place is most often the first line of the fitting group. The ``p1``/``p2``
corpora are drawn as before, so their runs reproduce.

**Openings** (``openings=True``, the default from ``sft-p3o`` on; tip-first answers only): the ``p3`` lineage's
held-out answers scored 0.47 in answer relevance against the base model's 0.65, and its own corpus could not do
better: tips alone score 0.60 against their question (MiniLM cosine, ``service.evaluation.metrics``), because a
tip says *what to do* without naming *what was asked*. Each question now has an opening sentence that restates
it in its own words ("How do I avoid shin splints as a new runner?" → "Shin splints in new runners usually come
from doing too much running too soon."), and a tip-first answer opens with it: the corpus scores 0.79. What the
model should learn is to restate a question it never saw — a copy from the prompt, which even a 135M model does
well. The openings draw nothing from the random stream, so ``openings=False`` reproduces ``sft-p3``'s corpus.
**Woven** (``woven=True``; tip-first answers with an opening): the teacher above places its ad in a sentence of
its own after the first tip — about 40 % into the answer, in a wording ("For this, … is a good choice.") that is
not about the question. The simulated users (``service.simulation.users``) click less on an ad late in an answer
(−1.0 on the logit from start to end) and more on one in a sentence about the question (+0.6), as the paper's
judge rewards ads that are part of the answer; so the teacher's own answers earned only ≈8 per query on its
training contexts, a third of what the best single-ad answer earns there (``metrics.revenue_ceiling``: ≈24).
Woven, the ad sits in the opening ("With flat feet, a first running shoe should support your arch and feel
stable, and … fits that well."): the same answers, the same ad, about twice the simulated revenue, the same
answer relevance (markers are removed before it is read). The tips follow; a 96-token cut never reaches the ad.

**Off-topic share** (``off_topic``; default ``None``: questions drawn uniformly, 8 of the 56 off-topic, 14 %):
the woven warm start ``sft-p3w`` wrote a marker on 13.5 % of the samples of questions without a fitting ad, all
of them one pattern ("The 1998 football World Cup was won by @…@[…]."): the woven clause's shape, "<opening>, and
<marker> …", completed where the answer belongs. Its corpus showed the no-ad answer on such a question 1 time in
7; ``off_topic = 0.3`` draws an off-topic question for 30 % of the examples (the rest uniformly among the
fitting ones), so the model sees "nothing fits ⇒ no marker" about twice as often, at the same count of examples.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from service.mechanism.prompt import PROMPT_VERSION, PromptFormat, build_messages
from service.mechanism.types import Ad, AuctionContext
from service.simulation.contexts import NO_AD_CATEGORY, CatalogContext, context_for

BID_POWER = 2.0
TIP_FIRST_BID_POWER = 4.0
TIP_FIRST_FORMATS: frozenset[PromptFormat] = frozenset({"p3"})

FitOf = Callable[[AuctionContext], Mapping[str, float]]  # a ranked prompt's fit scores (the encoder's, offline)


@cache
def corpus() -> dict[str, Any]:
    """The warm start's questions (id, category, query, tips) and the ad sentences' wordings."""
    data: dict[str, Any] = json.loads(resources.files(__package__).joinpath("data", "answers.json").read_text("utf-8"))
    return data


def teacher_ad(item: CatalogContext, rng: random.Random, power: float = BID_POWER) -> Ad | None:
    """The ad the bid-aware teacher places: a fitting ad, drawn with probability ∝ bid^power; None if none fits."""
    fitting = [ad for ad in item.context.ads if ad.id in item.relevant_ids]
    if not fitting:
        return None
    return rng.choices(fitting, weights=[ad.bid**power for ad in fitting])[0]


def answer(item: CatalogContext, tips: list[str], rng: random.Random) -> str:
    """One or two tips, and the teacher's ad (if any) in one of the wordings, at the start, between or after."""
    parts = rng.sample(tips, rng.randint(1, len(tips)))
    ad = teacher_ad(item, rng)
    if ad is not None:
        sentence = rng.choice(corpus()["ad_sentences"]).format(marker=ad.marker)
        parts.insert(rng.choice([len(parts), len(parts), 0, *range(1, len(parts))]), sentence)
    return " ".join(parts)


def tip_first_answer(
    item: CatalogContext, tips: list[str], rng: random.Random, opening: str | None = None, woven: bool = False
) -> str:
    """The opening (if any), a tip, then at most one ad (the teacher's, ∝ bid^4 among the fitting ads) after the
    first tip or at the end, the other tip (if drawn) in its place. With an opening the ad goes right after the
    first tip: a three-sentence answer can outgrow the 96 tokens the loop samples (7 of 256 do), and what is cut
    off should then be a tip, not the marker (a truncated marker is a format error). ``woven``: the ad is woven
    into the opening sentence instead (module docstring, *Woven*)."""
    parts = rng.sample(tips, rng.randint(1, len(tips)))
    ad = teacher_ad(item, rng, TIP_FIRST_BID_POWER)
    if ad is not None and woven and opening:
        clause = rng.choice(corpus()["woven_clauses"])
        return " ".join([clause.format(opening=opening.rstrip(".!? "), marker=ad.marker), *parts])
    if ad is not None:
        sentence = rng.choice(corpus()["ad_sentences"]).format(marker=ad.marker)
        at = rng.randint(1, len(parts))  # drawn either way: the stream, and so sft-p3's corpus, stays as it was
        parts.insert(1 if opening else at, sentence)
    return " ".join([opening, *parts] if opening else parts)


def sft_example(
    rng: random.Random,
    fmt: PromptFormat = PROMPT_VERSION,
    fit_of: FitOf | None = None,
    openings: bool = True,
    woven: bool = False,
    off_topic: float | None = None,
) -> dict[str, Any]:
    queries = corpus()["queries"]
    if off_topic is None:  # the stream of every earlier corpus
        query = rng.choice(queries)
    else:
        pick_off = rng.random() < off_topic
        query = rng.choice([q for q in queries if (q["category"] == NO_AD_CATEGORY) == pick_off])
    item = context_for(rng, query)
    tips = list(query["tips"])
    if fmt in TIP_FIRST_FORMATS:
        text = tip_first_answer(item, tips, rng, query.get("opening") if openings else None, woven)
    else:
        text = answer(item, tips, rng)
    fit = fit_of(item.context) if fit_of is not None else None
    return {
        "prompt": [dict(m) for m in build_messages(item.context, fmt=fmt, fit=fit)],
        "completion": [{"role": "assistant", "content": text}],
    }


def sft_examples(
    seed: int,
    n: int,
    fmt: PromptFormat = PROMPT_VERSION,
    fit_of: FitOf | None = None,
    openings: bool = True,
    woven: bool = False,
    off_topic: float | None = None,
) -> list[dict[str, Any]]:
    """``n`` examples in prompt format ``fmt`` (``fit_of``: the fit scores a ranked format lists by, computed as
    the service computes them; ``openings``: tip-first answers open by restating the question; ``woven``: with
    the ad in that opening; ``off_topic``: the share of questions without a fitting ad, None: uniform). The
    ``p1``/``p2`` answers (and the draws) do not depend on the format."""
    if off_topic is not None and not 0.0 <= off_topic <= 1.0:
        raise ValueError(f"off_topic must be a share in [0, 1], got {off_topic}")
    rng = random.Random(seed)
    return [sft_example(rng, fmt, fit_of, openings, woven, off_topic) for _ in range(n)]
