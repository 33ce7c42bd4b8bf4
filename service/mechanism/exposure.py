"""Which candidate ads a response exposes, and how the response is shown to the user.

An ad is exposed when its marker ``@Ad Title@[Ad ID]`` appears with the exact id *and* title of a candidate
(paper Def. 3.1, §5.1 fn. 1). Anything that looks like a marker but is not one is a format error: it is
counted (the objective penalises it) and stripped from the rendered text, keeping only the words the model
wrote, so the user never sees an unpaid or broken link. A sample cut at ``max_tokens`` can end in half a marker:
that is a format error too (``truncated``) and is never shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from service.mechanism.types import Ad

# Titles and ids are validated at the API to contain none of "@[]" or newlines, so this is unambiguous.
MARKER_RE = re.compile(r"@([^@\[\]\n]{1,200})@\[([^@\[\]\n]{1,64})\]")
# What a marker cut short looks like at the very end of a text: "@Title", "@Title@", "@Title@[Ad-7".
_TRUNCATED_TAIL = re.compile(r"@([^@\[\]\n]{0,200})(@(\[[^@\[\]\n]{0,64})?)?$")


class FormatErrorKind(StrEnum):
    UNKNOWN_AD = "unknown_ad"  # a marker whose id is not a candidate
    TITLE_MISMATCH = "title_mismatch"  # a candidate id with a title other than the candidate's
    MISSING_ID = "missing_id"  # "@Title@" of a candidate without "[ID]"
    DANGLING_ID = "dangling_id"  # "[ID]" of a candidate outside a marker
    BARE_ID = "bare_id"  # "@Title@ID": a candidate's id without its brackets
    TRUNCATED = "truncated"  # half a marker where generation stopped at max_tokens ("@Title@[Ad-70")


@dataclass(frozen=True, slots=True)
class FormatError:
    kind: FormatErrorKind
    text: str
    start: int


@dataclass(frozen=True, slots=True)
class Placement:
    """A valid marker in the raw text."""

    ad_id: str
    title: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Exposure:
    """What one response shows: valid placements, format errors and each exposed ad's first position."""

    text: str
    placements: tuple[Placement, ...]
    errors: tuple[FormatError, ...]
    # Replacements for stripped errors: (start, end, replacement text), disjoint from placements.
    strips: tuple[tuple[int, int, str], ...]

    @property
    def exposed(self) -> tuple[str, ...]:
        """Distinct exposed ad ids, in order of first appearance."""
        seen: dict[str, None] = {}
        for placement in self.placements:
            seen.setdefault(placement.ad_id, None)
        return tuple(seen)

    @property
    def n_ads(self) -> int:
        return len(self.exposed)

    def first_position(self, ad_id: str) -> float | None:
        """Relative character position (0 = start, 1 = end) of the ad's first marker, None if not exposed."""
        for placement in self.placements:
            if placement.ad_id == ad_id:
                return placement.start / max(1, len(self.text))
        return None

    def rank(self, ad_id: str) -> int | None:
        """1 for the first distinct ad in the answer, 2 for the second, …; None if not exposed."""
        try:
            return self.exposed.index(ad_id) + 1
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class _Patterns:
    bare: re.Pattern[str]
    missing_id: re.Pattern[str]
    dangling_id: re.Pattern[str]


@lru_cache(maxsize=1024)
def _patterns(ads: tuple[tuple[str, str], ...]) -> _Patterns:
    """One compiled alternation per kind for a candidate set (longest first, so a title that is a prefix of
    another does not cut it short), cached: the K samples of an auction, and repeats of a context, share it."""
    ids = "|".join(re.escape(i) for i in sorted({i for i, _ in ads}, key=len, reverse=True))
    titles = "|".join(re.escape(t) for t in sorted({t for _, t in ads}, key=len, reverse=True))
    return _Patterns(
        bare=re.compile(r"@([^@\[\]\n]{1,200})@(?:" + ids + r")(?![\w-])"),
        missing_id=re.compile("@(" + titles + r")@(?!\[)"),
        dangling_id=re.compile(r"\[(?:" + ids + r")\]"),
    )


def parse(text: str, ads: Sequence[Ad], truncated: bool = False) -> Exposure:
    """``truncated``: the text stopped at ``max_tokens``, so a marker-shaped tail is half a marker."""
    by_id = {ad.id: ad for ad in ads}
    placements: list[Placement] = []
    errors: list[FormatError] = []
    strips: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []

    for match in MARKER_RE.finditer(text):
        title, ad_id = match.group(1), match.group(2)
        ad = by_id.get(ad_id)
        if ad is not None and ad.title == title:
            placements.append(Placement(ad_id, title, match.start(), match.end()))
        else:
            kind = FormatErrorKind.UNKNOWN_AD if ad is None else FormatErrorKind.TITLE_MISMATCH
            errors.append(FormatError(kind=kind, text=match.group(0), start=match.start()))
            strips.append((match.start(), match.end(), title))
        taken.append(match.span())

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    patterns = _patterns(tuple((ad.id, ad.title) for ad in ads)) if ads else None
    if patterns is not None:
        # "@Title@Ad-7001": a marker without the id's brackets. Only the words are kept (no "GrinderAd-9001").
        for match in patterns.bare.finditer(text):
            if free(*match.span()):
                errors.append(FormatError(kind=FormatErrorKind.BARE_ID, text=match.group(0), start=match.start()))
                strips.append((match.start(), match.end(), match.group(1)))
                taken.append(match.span())

    if truncated:
        tail = _TRUNCATED_TAIL.search(text)
        if tail is not None and free(*tail.span()):
            title, rest = tail.group(1), tail.group(2)
            if rest is not None or any(ad.title.startswith(title) for ad in ads):
                errors.append(FormatError(kind=FormatErrorKind.TRUNCATED, text=tail.group(0), start=tail.start()))
                strips.append((tail.start(), tail.end(), ""))
                taken.append(tail.span())

    if patterns is not None:
        for kind, pattern in (
            (FormatErrorKind.MISSING_ID, patterns.missing_id),  # "@Title@" of a candidate: keep the title
            (FormatErrorKind.DANGLING_ID, patterns.dangling_id),  # "[ID]" of a candidate: drop it
        ):
            for match in pattern.finditer(text):
                if free(*match.span()):
                    keep = match.group(1) if kind is FormatErrorKind.MISSING_ID else ""
                    errors.append(FormatError(kind=kind, text=match.group(0), start=match.start()))
                    start = match.start()
                    if not keep and start > 0 and text[start - 1] == " ":
                        start -= 1  # removing "[ID]" must not leave a double space
                    strips.append((start, match.end(), keep))
                    taken.append(match.span())

    errors.sort(key=lambda e: e.start)
    strips.sort()
    return Exposure(text=text, placements=tuple(placements), errors=tuple(errors), strips=tuple(strips))


# Metacharacters of the regex dialect vLLM's structured-output backends (xgrammar, guidance, outlines) share;
# Python's re.escape also escapes spaces and "-", which xgrammar reports as unknown escapes.
_REGEX_META = frozenset("\\.^$|?*+()[]{}")


def _regex_literal(text: str) -> str:
    return "".join("\\" + c if c in _REGEX_META else c for c in text)


# What may come right before a marker: the start of the text, the end of another marker, a space or line break,
# an opening bracket, a quote or emphasis. Not a letter: the model that writes a title without its "@" and
# then the "@" of "@[ID]" ("BassPod Wireless Earbuds@") must not have that "@" completed as another ad's marker
# ("…Earbuds@AuraSound ANC Headphones@[Ad-7056]": 14 of 546 placements of irpo-r1 before this rule).
MARKER_OPENERS = " \t\n\r([{\"'*_]"
# The same characters as one regex class, spelled so that both re and xgrammar read it: escapes for the
# control characters and the brackets, the rest literal.
_CLASS_ESCAPES = {"\t": r"\t", "\n": r"\n", "\r": r"\r", "[": r"\[", "]": r"\]", "\\": r"\\", "^": r"\^", "-": r"\-"}
_OPENER_CLASS = "[" + "".join(_CLASS_ESCAPES.get(c, c) for c in MARKER_OPENERS) + "]"


@lru_cache(maxsize=1024)
def _marker_regex(ads: tuple[tuple[str, str], ...]) -> str:
    markers = "|".join(
        _regex_literal(title) + "@" + _regex_literal(f"[{ad_id}]") for ad_id, title in sorted(set(ads), reverse=True)
    )
    if not markers:
        return "[^@]*"
    # Plain text as starred classes between markers, not a star over (char | marker): the same kind of language,
    # but xgrammar's Earley matcher then keeps a couple of items per step instead of one per union branch —
    # measured with SmolLM2's vocabulary and 20 ads, a token mask costs ≈ 2 µs instead of ≈ 29 ms.
    return f"(?:(?:[^@]*{_OPENER_CLASS})?@(?:{markers}))*[^@]*"  # each marker: after the start, a marker or an opener


def marker_regex(ads: Sequence[Ad]) -> str:
    """The texts in which every ``@`` opens a whole marker of a candidate, itself at the start of the text or
    after one of ``MARKER_OPENERS``: ``(?:(?:[^@]*[opener])?@(?:M))*[^@]*`` with ``M = T1@\\[ID1\\]|…``.

    Decoding constrained to it (vLLM structured outputs) cannot write an unknown id, a neighbour's id after a
    title, a marker without its id or a bare id — the errors ``parse`` counts, which the 135M model makes in
    12–36 % of samples (docs/irpo.md) and which the objective prices at a sure click on the top bid. It does
    not change a sample that writes no ``@``: the grammar only masks tokens after one, so the policy
    π_θ(y | x, h, a, b) is kept and restricted to well-formed answers. What it cannot prevent is a marker cut
    by ``max_tokens`` (``TRUNCATED``). Candidates' titles and ids hold no ``@[]`` or newline (validated at the
    API), so the language is unambiguous. No candidates: no ``@`` at all."""
    return _marker_regex(tuple((ad.id, ad.title) for ad in ads))


LINK_TEMPLATE = "[{title}]({url})"
SPONSORED_TEMPLATE = "[{title}]({url}) (Sponsored)"  # the service's default: every paid link is labelled


def render(exposure: Exposure, link: Callable[[str], str], template: str = LINK_TEMPLATE) -> str:
    """The answer as shown: valid markers become links by ``template`` (``{title}``, ``{url}``; Markdown
    ``[Title](url)`` plus, in the service, a visible sponsored label), errors are stripped."""
    edits = [(p.start, p.end, template.format(title=p.title, url=link(p.ad_id))) for p in exposure.placements]
    edits.extend(exposure.strips)
    edits.sort()
    out: list[str] = []
    cursor = 0
    for start, end, replacement in edits:
        out.append(exposure.text[cursor:start])
        out.append(replacement)
        cursor = end
    out.append(exposure.text[cursor:])
    return "".join(out)
