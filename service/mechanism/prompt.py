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
- ``p3``: ``p2``'s lines, **ranked by the platform** in two groups: the ads that fit the question, highest bid
  first, then the others, highest bid first (``listing``). An ad fits when the question's similarity to the ad's
  topic (its category's centroid, ``service.models.relevance``) is at least ``FIT_THRESHOLD``. Why: the 135M
  model tells a fitting ad from an unfitting one at chance and never compares two numbers (docs/irpo.md: 44 %
  of its exposures relevant, bid slope ≈ 0 after three IRPO rounds); a ranked list turns both into *where* an
  ad stands, which a small model copies. It is the retrieval-and-ranking stage every ad server has before its
  allocation (../shared/notes/paper.md §1.2 [N]); the LLM still decides whether, which and where. The rank is
  non-decreasing in an ad's own bid (the fit does not depend on bids), so raising a bid never moves an ad down:
  the order keeps the allocation's monotonicity (Def. 3.2). Bid-blind (``bids=False``): the groups ranked by
  fit alone, so the samples still do not depend on bids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from service.mechanism.types import Ad, AuctionContext

# Bump (add a format) when the wording changes: the model learns this exact text, and logs must say which one it
# saw. A bid-blind prompt's version is its format's with "-blind": the bid-blind proposal is the same prompt
# without the bids, so the K samples do not depend on bids and the selection's guarantees (monotonicity, IC with
# Myerson payments, IR) hold for the whole mechanism; and a repeated context with new bids has the same prompt,
# so it reuses its cached samples.
PromptFormat = Literal["p1", "p2", "p3"]
PROMPT_FORMATS: tuple[PromptFormat, ...] = ("p1", "p2", "p3")
RANKED_FORMATS: frozenset[PromptFormat] = frozenset({"p3"})  # formats whose listing needs each ad's fit

# p3's relevance floor on sim(question, ad's topic). On 300 + 300 catalogue contexts (MiniLM, bf16): the fitting
# ads' similarities have 10th percentiles 0.19 (training questions) and 0.22 (held out), the others' 90th 0.15 and
# 0.10; at 0.17 no fitting ad falls below and 7.7 % (training) / 2.3 % (held out) of the others rise above.
FIT_THRESHOLD = 0.17
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
    fit: tuple[tuple[str, float], ...] = ()  # what a ranked format ranked by (ad id, fit), logged with impressions


def format_bid(bid: float) -> str:
    """A bid as the model reads it: plain decimal, no exponent, no trailing zeros (35.50 → "35.5")."""
    text = format(Decimal(repr(float(bid))).quantize(Decimal("0.01")).normalize(), "f")
    return text


_LISTING = {
    "p1": "one JSON object per line",
    "p2": "one per line, each written as you must insert it",
    "p3": "one per line, each written as you must insert it, ranked by the platform",
}
_COPY_MARKER = (
    "Write every ad exactly as it appears in the candidate list, @Ad Title@[Ad ID], copied whole and unchanged, "
    "without its bid."
)
_COPY_RULE = {
    "p1": "Write every ad exactly as @Ad Title@[Ad ID], with the title and the ID copied exactly from the "
    "candidate list.",
    "p2": _COPY_MARKER,
    "p3": _COPY_MARKER,
}
_GROUPS = ("Ads that fit this question, best first:", "Other ads:")


def _ad_line(ad: Ad, with_bid: bool = True, fmt: PromptFormat = PROMPT_VERSION) -> str:
    if fmt in ("p2", "p3"):
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


def fits(ad: Ad, fit: Mapping[str, float]) -> bool:
    """p3's relevance floor: the ad's topic similarity to the question is at least ``FIT_THRESHOLD`` (an ad with no
    score does not fit)."""
    return fit.get(ad.id, 0.0) >= FIT_THRESHOLD


def placeable(ads: Sequence[Ad], fit: Mapping[str, float] | None, floor: bool) -> tuple[Ad, ...]:
    """The candidates the marker grammar lets the model write. ``floor`` (the relevance floor, a brand-safety
    control): only the ads that fit the question (``fits``); without it, or without fit scores, all of them.
    Why: a 135M model completes a sentence with a marker where the answer belongs ("The 1998 football World
    Cup was won by @GrindRight Burr Grinder@[…]."; docs/irpo.md, levers 6–7), which no advertiser wants next to
    its name and no user wants in an answer. The floor leaves the prompt as it is (the model sees what it was
    trained on) and masks only the markers of unfitting ads, so a sample that writes none is unchanged. The fit
    does not depend on bids, so which ads can be placed does not either: the allocation's monotonicity in
    bids (Def. 3.2) is kept, and so are IC and IR of the payments built on it."""
    if not floor or fit is None:
        return tuple(ads)
    return tuple(ad for ad in ads if fits(ad, fit))


def listing(ads: Sequence[Ad], fit: Mapping[str, float], bids: bool = True) -> tuple[tuple[Ad, ...], tuple[Ad, ...]]:
    """p3's two groups, (fitting, others), each ranked by bid (bid-blind: by fit), then by fit, then by id: a total,
    deterministic order in which a higher own bid never ranks an ad lower."""

    def key(ad: Ad) -> tuple[float, float, str]:
        score = fit.get(ad.id, 0.0)
        return (-ad.bid if bids else -score, -score, ad.id)

    ranked = sorted(ads, key=key)
    return tuple(a for a in ranked if fits(a, fit)), tuple(a for a in ranked if not fits(a, fit))


def _ads_block(context: AuctionContext, bids: bool, fmt: PromptFormat, fit: Mapping[str, float] | None) -> str:
    if fmt not in RANKED_FORMATS:
        return "\n".join(_ad_line(ad, bids, fmt) for ad in context.ads) or "(none)"
    groups = listing(context.ads, fit or {}, bids)
    return "\n".join(
        "\n".join([title, *(_ad_line(ad, bids, fmt) for ad in group)] if group else [title, "(none)"])
        for title, group in zip(_GROUPS, groups, strict=True)
    )


def build_messages(
    context: AuctionContext,
    bids: bool = True,
    fmt: PromptFormat = PROMPT_VERSION,
    fit: Mapping[str, float] | None = None,
) -> tuple[Message, ...]:
    """``bids=False``: the bid-blind proposal (the candidate list without bids); ``fmt``: the candidate list's
    format (module docstring); ``fit``: ad id → sim(question, ad's topic), which ``p3`` ranks by (ignored by the
    other formats; an ad without one counts as not fitting)."""
    ads = _ads_block(context, bids, fmt, fit)
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
    context: AuctionContext,
    render: ChatRenderer,
    bids: bool = True,
    fmt: PromptFormat = PROMPT_VERSION,
    fit: Mapping[str, float] | None = None,
) -> Prompt:
    messages = build_messages(context, bids, fmt, fit)
    text = render(messages)
    scores = fit or {}
    ranked_by = tuple((ad.id, float(scores.get(ad.id, 0.0))) for ad in context.ads) if fmt in RANKED_FORMATS else ()
    return Prompt(
        messages=messages, text=text, hash=prompt_hash(text), version=prompt_version(fmt, bids), fit=ranked_by
    )
