"""Warm-start data (pure): synthetic answers that teach the marker format, not the allocation.

The paper starts IRPO from an instruct model that already writes ``@Title@[ID]``; the bundled 135M model does
not (0 % valid markers, ../shared/notes/irpo-feasibility.md). Each example is a training-split catalogue
context in the service's exact prompt (``build_messages``) and a short answer: a tip for the query and, when
the query has a fitting ad, one sentence placing *a random* relevant ad — not the highest bid, so which ad to
pick for its bid is left to IRPO. Off-topic queries get the tip alone (no fitting ad ⇒ no ad).
Format: TRL's conversational prompt/completion, so the loss covers the answer only.
"""

from __future__ import annotations

import random
from typing import Any

from service.mechanism.prompt import build_messages
from service.simulation.contexts import NO_AD_CATEGORY, draw_context

# One short, correct answer per training query (catalogue query id → tip).
TIPS = {
    "q001": "Look for a stability shoe with firm arch support and a wide, stable base.",
    "q002": "Run three or four easy days a week and add one longer run that grows by about ten percent weekly.",
    "q004": "Cast iron and heavy tri-ply pans hold heat best, so preheat them well before the steak goes in.",
    "q005": "A sheet-pan dinner of chicken thighs, potatoes and vegetables feeds four with one tray to clean.",
    "q007": "Spend two days in Lisbon's old town, one in Belem, one in Sintra and one on the Cascais coast.",
    "q008": "Pack five days of clothes in neutral colours and plan to do laundry once a week.",
    "q010": "A light laptop with 16 GB of RAM, a fast SSD and a long battery life covers a whole degree.",
    "q011": "Put the top of the screen at eye level and keep your elbows at ninety degrees.",
    "q013": "Use a gentle foaming cleanser twice a day, a light moisturiser and sunscreen every morning.",
    "q014": "Yes: UV rays reach your skin on cloudy winter days, so keep using sunscreen.",
    "q016": "Grind fresh beans finely, dose about eighteen grams and aim for a 25 to 30 second shot.",
    "q017": "Light roasts keep more acidity and origin flavour, dark roasts taste bolder and more bitter.",
    "q019": "Do four rounds of squats, push-ups, lunges, planks and jumping jacks, forty seconds each.",
    "q020": "About 7000 to 10000 steps a day is a good target for most adults.",
    "q022": "Practise speaking every day from the first week and learn the most common phrases first.",
    "q023": "Start with small scripts that automate something you care about and practise a little every day.",
    "q025": "Mix the new food into the old one over seven to ten days, raising the share slowly.",
    "q026": "Brush your dog a few times a week and vacuum often to keep the loose hair under control.",
    "q028": "Start with herbs, lettuce and cherry tomatoes in deep pots that get six hours of sun.",
    "q029": "Plant tomatoes outdoors after the last frost, once the nights stay above ten degrees.",
    "q031": "Split the income into needs, wants and savings, and track every expense for a month.",
    "q032": "Pay off high-interest debt first, then invest while keeping a small emergency fund.",
    "q034": "Closed-back headphones with active noise cancelling block open-office chatter best.",
    "q035": "Record in a quiet, soft-furnished room with a USB microphone close to your mouth.",
    "q037": "The capital of Australia is Canberra.",
    "q038": "Plants use sunlight to turn water and carbon dioxide into sugar, releasing oxygen.",
    "q039": "Soft rain on amber leaves, the quiet street breathes slow, autumn hums along.",
    "q040": "France won the 1998 football World Cup, beating Brazil 3-0 in the final.",
}

AD_SENTENCES = (
    "For this, {marker} is a good choice.",
    "{marker} can help with that.",
    "You could also try {marker}.",
    "Many people find {marker} useful here.",
)


def sft_example(rng: random.Random) -> dict[str, Any]:
    while True:
        item = draw_context(rng, "train")
        if item.query_id in TIPS:
            break
    answer = TIPS[item.query_id]
    if item.category != NO_AD_CATEGORY:
        ad = rng.choice([a for a in item.context.ads if a.id in item.relevant_ids])
        answer += " " + rng.choice(AD_SENTENCES).format(marker=ad.marker)
    return {
        "prompt": [dict(m) for m in build_messages(item.context)],
        "completion": [{"role": "assistant", "content": answer}],
    }


def sft_examples(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [sft_example(rng) for _ in range(n)]
