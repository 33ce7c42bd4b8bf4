"""What the CTR model knows about an ad's relevance: cosine similarities of the ad's text to the query, to the user's
profile and to the words around its marker in the response, of the query to the ad's topic (its category's
centroid), and of the words around the marker to the query (paper §4.1.1: the pCTR model embeds query and
response with a frozen text encoder). The similarities are computed outside the mechanism, by the sentence
encoder (``service.models.encoder``); this module only says which texts are compared, so it stays pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from service.mechanism.exposure import MARKER_RE, Exposure
from service.mechanism.types import Ad

WINDOW_CHARS = 160  # each side of an ad's first marker: about one sentence of the answer
# The user's click history, smoothed towards a prior rate of 0.1 with the weight of 10 exposures:
# ``(clicks + 1) / (exposures + 10)``; a user never seen is at the prior.
USER_PRIOR_CLICKS, USER_PRIOR_EXPOSURES = 1.0, 10.0
USER_PRIOR_RATE = USER_PRIOR_CLICKS / USER_PRIOR_EXPOSURES  # a user never seen, or history unavailable


def user_click_rate(exposures: int, clicks: int) -> float:
    """The user's smoothed click rate on the ads shown to them so far (the paper's pCTR model feeds a user
    embedding; at our scale the user's own history is the feature that carries their click-happiness)."""
    return (clicks + USER_PRIOR_CLICKS) / (exposures + USER_PRIOR_EXPOSURES)


@dataclass(frozen=True, slots=True)
class Relevance:
    query: Mapping[str, float] = field(default_factory=dict)  # ad id → sim(ad, query)
    profile: Mapping[str, float] = field(default_factory=dict)  # ad id → sim(ad, profile)
    around: Mapping[tuple[int, str], float] = field(default_factory=dict)  # (sample, ad id) → sim(ad, its window)
    # ad id → sim(query, centroid of the ad's category): is the question about what the ad sells, beyond its title
    topic: Mapping[str, float] = field(default_factory=dict)
    # (sample, ad id) → sim(the ad's window, query): is the ad woven into the answer or bolted on
    native: Mapping[tuple[int, str], float] = field(default_factory=dict)
    # the user's smoothed click rate before this auction (``user_click_rate``; the prior for an unknown user)
    user: float = USER_PRIOR_RATE


NO_RELEVANCE = Relevance()


def ad_text(ad: Ad) -> str:
    """The ad as the encoder reads it: its title and the words of its landing page's path (the catalogue's paths
    name the category and the product: ``/audio/aurasound-anc-headphones``)."""
    path = urlsplit(ad.url).path
    words = " ".join(part for part in path.replace("-", " ").replace("_", " ").split("/") if part)
    return f"{ad.title} ({words})" if words else ad.title


def _flatten(value: Any) -> Iterable[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, (str, list, tuple, Mapping)):
                yield from _flatten(item)
            elif item is not None and key not in ("id",):
                yield f"{key} {item}"
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _flatten(item)
    elif value is not None:
        yield str(value)


def profile_text(profile: Mapping[str, Any]) -> str:
    """The profile's values as one line ("interests: audio, coffee" reads as "audio coffee …")."""
    return " ".join(_flatten(profile))


def window(exposure: Exposure, ad_id: str, chars: int = WINDOW_CHARS) -> str:
    """The answer's words around the ad's first marker, without the ad itself, other markers replaced by their
    titles: what the user reads next to the ad. The ad's own title is left out wherever it stands in the window,
    as its marker or in plain words: ``sim(ad, window)`` of "BassPod Wireless Earbuds @BassPod Wireless
    Earbuds@[Ad-7057] are good" would otherwise be the title's similarity to itself, and the CTR model would
    price a sentence that names the product twice as a relevant placement (the README example, session 6)."""
    placement = next((p for p in exposure.placements if p.ad_id == ad_id), None)
    if placement is None:
        raise ValueError(f"ad {ad_id} is not exposed in this response")
    text = exposure.text
    before = text[max(0, placement.start - chars) : placement.start]
    after = text[placement.end : placement.end + chars]
    own = re.compile(re.escape(placement.title), re.IGNORECASE) if placement.title.strip() else None
    clean = [MARKER_RE.sub(lambda m: m.group(1), part) for part in (before, after)]
    if own is not None:
        clean = [own.sub(" ", part) for part in clean]
    return " ".join(" ".join(part.split()) for part in clean if part.strip())


def windows(exposures: Sequence[Exposure]) -> dict[tuple[int, str], str]:
    """Every (sample, exposed ad) pair's window: what the encoder embeds per auction beyond query and profile."""
    return {(k, ad_id): window(e, ad_id) for k, e in enumerate(exposures) for ad_id in e.exposed}


def to_dict(relevance: Relevance) -> dict[str, Any]:
    """As logged in an impression: the CTR features' similarities exactly as served (a refit reads them back)."""
    return {
        "query": dict(relevance.query),
        "profile": dict(relevance.profile),
        "around": [[k, ad_id, value] for (k, ad_id), value in relevance.around.items()],
        "topic": dict(relevance.topic),
        "native": [[k, ad_id, value] for (k, ad_id), value in relevance.native.items()],
        "user": relevance.user,
    }


def from_dict(data: Mapping[str, Any] | None) -> Relevance:
    if not data:
        return NO_RELEVANCE
    return Relevance(
        query={str(k): float(v) for k, v in data.get("query", {}).items()},
        profile={str(k): float(v) for k, v in data.get("profile", {}).items()},
        around={(int(k), str(ad_id)): float(v) for k, ad_id, v in data.get("around", [])},
        # absent in impressions logged before round 2's topic features: 0, as the CTR model reads a missing value
        topic={str(k): float(v) for k, v in data.get("topic", {}).items()},
        native={(int(k), str(ad_id)): float(v) for k, ad_id, v in data.get("native", [])},
        user=float(data.get("user", USER_PRIOR_RATE)),
    )
