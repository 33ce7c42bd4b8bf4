"""The deterministic prompt: same context ⇒ same messages ⇒ same bytes ⇒ same hash.

Structure follows the paper's Ad-LLM prompt (v1 §5.1, App. B.1): role, task, candidate ads as JSON with
id/title/bid, rules with the marker format ``@Ad Title@[Ad ID]``, an example, the user profile and the question.
The chat template is applied by a function handed in (the model's tokenizer), so this module stays pure.

Two formats of the candidate list, because a model learns the exact text it was trained on (a model version
records its format, ``service.models.registry``):

- ``p1`` (the paper's): one JSON object per ad, ``{"Ad ID": …, "Ad Title": …, "Ad Bid": …}``. The ID comes
  before the title, so writing the marker means binding a title to the ID of its own line; the 135M model binds
  it to a neighbouring line's ID in about half of its markers (docs/irpo.md, round 2's diagnosis).
- ``p2``: each ad as the marker it must be copied as, ``@Ad Title@[Ad ID]`` in one piece, then its bid — copying
  one contiguous span instead of binding two fields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from service.mechanism.types import Ad, AuctionContext

# Bump (add a format) when the wording changes: the model learns this exact text, and logs must say which one it
# saw. A bid-blind prompt's version is its format's with "-blind": the bid-blind proposal is the same prompt
# without the bids, so the K samples do not depend on bids and the selection's guarantees (monotonicity, IC with
# Myerson payments, IR) hold for the whole mechanism; and a repeated context with new bids has the same prompt,
# so it reuses its cached samples.
PromptFormat = Literal["p1", "p2"]
PROMPT_FORMATS: tuple[PromptFormat, ...] = ("p1", "p2")
PROMPT_VERSION: PromptFormat = "p1"  # the default: base and every version that records no format

Message = dict[str, str]
ChatRenderer = Callable[[Sequence[Message]], str]

SYSTEM_TEMPLATE = """\
You are a helpful AI assistant with advertising capabilities. Answer the user's question well and, when it \
fits, insert ads from the candidate list into your answer, to serve both the user and the advertisers.

Candidate ads ({listing}):
{ads}

Rules:
1. You may insert no ad, one ad or several. {copy_rule} A wrong format or wrong ad information is severely \
penalised.
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


_LISTING = {"p1": "one JSON object per line", "p2": "one per line, each written as you must insert it"}
_COPY_RULE = {
    "p1": "Write every ad exactly as @Ad Title@[Ad ID], with the title and the ID copied exactly from the "
    "candidate list.",
    "p2": "Write every ad exactly as it appears in the candidate list, @Ad Title@[Ad ID], copied whole and "
    "unchanged, without its bid.",
}


def _ad_line(ad: Ad, with_bid: bool = True, fmt: PromptFormat = PROMPT_VERSION) -> str:
    if fmt == "p2":
        return f"{ad.marker} (bid {format_bid(ad.bid)})" if with_bid else ad.marker
    line = {"Ad ID": ad.id, "Ad Title": ad.title}
    if with_bid:
        line["Ad Bid"] = format_bid(ad.bid)
    return json.dumps(line, ensure_ascii=False)


def prompt_format(name: str) -> PromptFormat:
    """``name`` checked as a prompt format (a version's record, a setting), or ``ValueError``."""
    if name not in PROMPT_FORMATS:
        raise ValueError(f"unknown prompt format {name!r}; known: {', '.join(PROMPT_FORMATS)}")
    return name


def format_or_default(name: str | None) -> PromptFormat:
    """The format a setting or a version's record names, or ``PROMPT_VERSION`` when it names none (the one
    place the default is applied: the served version's resolution, the prompt builder and the build info)."""
    return PROMPT_VERSION if name is None else prompt_format(name)


def prompt_version(fmt: PromptFormat, bids: bool = True) -> str:
    """What impressions record: the format, with ``-blind`` when the bids were left out."""
    return fmt if bids else f"{fmt}-blind"


def _profile_json(profile: Any) -> str:
    return json.dumps(profile, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


def build_messages(
    context: AuctionContext, bids: bool = True, fmt: PromptFormat = PROMPT_VERSION
) -> tuple[Message, ...]:
    """``bids=False``: the bid-blind proposal (the candidate list without bids); ``fmt``: the candidate list's
    format (module docstring)."""
    ads = "\n".join(_ad_line(ad, bids, fmt) for ad in context.ads) or "(none)"
    system = SYSTEM_TEMPLATE.format(listing=_LISTING[fmt], ads=ads, copy_rule=_COPY_RULE[fmt])
    return (
        {"role": "system", "content": system},
        {
            "role": "user",
            "content": USER_TEMPLATE.format(profile=_profile_json(context.profile), query=context.query),
        },
    )


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_prompt(
    context: AuctionContext, render: ChatRenderer, bids: bool = True, fmt: PromptFormat = PROMPT_VERSION
) -> Prompt:
    messages = build_messages(context, bids, fmt)
    text = render(messages)
    return Prompt(messages=messages, text=text, hash=prompt_hash(text), version=prompt_version(fmt, bids))
