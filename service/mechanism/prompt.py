"""The deterministic prompt: same context ⇒ same messages ⇒ same bytes ⇒ same hash.

Structure follows the paper's Ad-LLM prompt (v1 §5.1, App. B.1): role, task, candidate ads as JSON with
id/title/bid, rules with the marker format ``@Ad Title@[Ad ID]``, an example, the user profile and the question.
The chat template is applied by a function handed in (the model's tokenizer), so this module stays pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from service.mechanism.types import Ad, AuctionContext

# Bump when the wording changes: the model learns this exact text, and logs must say which one it saw.
PROMPT_VERSION = "p1"
# The bid-blind proposal: the same prompt without the "Ad Bid" field, so the K samples do not depend on bids and
# the selection's guarantees (monotonicity, IC with Myerson payments, IR) hold for the whole mechanism; and a
# repeated context with new bids has the same prompt, so it reuses its cached samples.
BID_BLIND_PROMPT_VERSION = "p1-blind"

Message = dict[str, str]
ChatRenderer = Callable[[Sequence[Message]], str]

SYSTEM_TEMPLATE = """\
You are a helpful AI assistant with advertising capabilities. Answer the user's question well and, when it \
fits, insert ads from the candidate list into your answer, to serve both the user and the advertisers.

Candidate ads (one JSON object per line):
{ads}

Rules:
1. You may insert no ad, one ad or several. Write every ad exactly as @Ad Title@[Ad ID], with the title and \
the ID copied exactly from the candidate list. A wrong format or wrong ad information is severely penalised.
2. A clicked ad earns revenue in proportion to its bid, but every extra ad makes the answer worse for the \
user. If the question does not suit ads, or no candidate fits it, insert no ad.
3. Never change an ad title. You may adapt the sentence around an ad so that it reads naturally.
4. The quality of the answer comes first. Do not explain how you chose ads.

Example: for the question "Any tips for long bike rides?" a good answer is \
"Stop to drink every 20 minutes, and a padded saddle such as @ComfortRide Gel Saddle@[Ad-0001] prevents soreness."\
"""

USER_TEMPLATE = """\
User profile: {profile}
User question: {query}"""


@dataclass(frozen=True, slots=True)
class Prompt:
    messages: tuple[Message, ...]
    text: str
    hash: str
    version: str = PROMPT_VERSION


def format_bid(bid: float) -> str:
    """A bid as the model reads it: plain decimal, no exponent, no trailing zeros (35.50 → "35.5")."""
    text = format(Decimal(repr(float(bid))).quantize(Decimal("0.01")).normalize(), "f")
    return text


def _ad_line(ad: Ad, with_bid: bool = True) -> str:
    line = {"Ad ID": ad.id, "Ad Title": ad.title}
    if with_bid:
        line["Ad Bid"] = format_bid(ad.bid)
    return json.dumps(line, ensure_ascii=False)


def _profile_json(profile: Any) -> str:
    return json.dumps(profile, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


def build_messages(context: AuctionContext, bids: bool = True) -> tuple[Message, ...]:
    """``bids=False``: the bid-blind proposal (the candidate list without bids)."""
    ads = "\n".join(_ad_line(ad, bids) for ad in context.ads) or "(none)"
    return (
        {"role": "system", "content": SYSTEM_TEMPLATE.format(ads=ads)},
        {
            "role": "user",
            "content": USER_TEMPLATE.format(profile=_profile_json(context.profile), query=context.query),
        },
    )


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_prompt(context: AuctionContext, render: ChatRenderer, bids: bool = True) -> Prompt:
    messages = build_messages(context, bids)
    text = render(messages)
    version = PROMPT_VERSION if bids else BID_BLIND_PROMPT_VERSION
    return Prompt(messages=messages, text=text, hash=prompt_hash(text), version=version)
