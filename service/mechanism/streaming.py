"""Rendering an answer while it is generated: never half a marker on screen.

Text is shown up to a *stable cut*: the earliest point where an ad marker (or a format error the renderer would
strip) might still be forming. Everything before the cut is rendered exactly as the whole answer will be
(``exposure.render(exposure.parse(...))``), so the pieces shown, concatenated, always equal the final rendering:
a complete valid marker turns into its link as soon as its closing ``]`` arrives, a broken one is stripped.
Patterns never span a newline and are at most ``MAX_PATTERN_CHARS`` long, which bounds the hold-back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from service.mechanism import exposure
from service.mechanism.types import Ad

MAX_PATTERN_CHARS = 1 + 200 + 2 + 64 + 1  # "@" title "@[" id "]"
# Everything that can still grow into a marker "@Title@[ID]" (or the error "@Title@" without an id).
_MARKER_PREFIX = re.compile(r"@(?:[^@\[\]\n]{1,200}(?:@(?:\[[^@\[\]\n]{0,64}\]?)?)?)?")
# "@Title@Ad-70": may still become the error "@Title@Ad-7001" (an id without brackets) — or not, if more follows.
_BARE_PREFIX = re.compile(r"@[^@\[\]\n]{1,200}@([^@\[\]\n\s]{1,64})")


def _is_open(tail: str, ids: Sequence[str]) -> bool:
    """Could ``tail`` (the rest of the text from an "@" or "[") still become part of a pattern?"""
    if tail.startswith("@"):
        if exposure.MARKER_RE.fullmatch(tail):
            return False  # a complete marker, valid or not: decided
        bare = _BARE_PREFIX.fullmatch(tail)
        if bare is not None and any(ad_id.startswith(bare.group(1)) for ad_id in ids):
            return True  # the id is not complete yet, or the next character decides whether it is one
        return _MARKER_PREFIX.fullmatch(tail) is not None
    # "[": a candidate's id outside a marker is a format error once its "]" arrives
    return any(f"[{ad_id}]".startswith(tail) and len(tail) < len(ad_id) + 2 for ad_id in ids)


def stable_cut(text: str, ads: Sequence[Ad]) -> int:
    """Length of the longest prefix of ``text`` that no pattern still forming can cross."""
    start = max(0, len(text) - MAX_PATTERN_CHARS)
    newline = text.rfind("\n", start)
    if newline >= 0:
        start = newline + 1
    ids = [ad.id for ad in ads]
    cut = next((i for i in range(start, len(text)) if text[i] in "@[" and _is_open(text[i:], ids)), len(text))
    if cut > 0 and text[cut - 1] == " " and (cut == len(text) or text[cut] == "["):
        cut -= 1  # a stripped "[ID]" takes the space before it: keep that space until the next character
    if cut == len(text):
        return cut
    # A pattern decided on the current text may still be re-decided if one still forming overlaps it (its
    # closing "@" opening a new marker, say): hold such a pattern back whole.
    parsed = exposure.parse(text, ads)
    spans = [(p.start, p.end) for p in parsed.placements] + [(s, e) for s, e, _ in parsed.strips]
    for span_start, span_end in spans:
        if span_start < cut < span_end:
            cut = span_start
    return cut


class StreamRenderer:
    """Feed generated text in pieces; get back the rendered text that is safe to show, in pieces."""

    def __init__(self, ads: Sequence[Ad], link: Callable[[str], str], template: str = exposure.LINK_TEMPLATE) -> None:
        self._ads = ads
        self._link = link
        self._template = template
        self._text = ""
        self._shown = ""

    @property
    def text(self) -> str:
        """Everything generated so far, as the model wrote it."""
        return self._text

    @property
    def shown(self) -> str:
        """Everything rendered and handed out so far."""
        return self._shown

    def feed(self, delta: str) -> str:
        self._text += delta
        return self._advance(stable_cut(self._text, self._ads))

    def finish(self, truncated: bool = False) -> str:
        """The rest, once the answer is complete: unfinished patterns are now plain text or stripped
        (``truncated``: generation stopped at max_tokens, so a marker-shaped tail is half a marker: stripped)."""
        return self._advance(len(self._text), truncated)

    def _advance(self, cut: int, truncated: bool = False) -> str:
        parsed = exposure.parse(self._text[:cut], self._ads, truncated=truncated)
        rendered = exposure.render(parsed, self._link, self._template)
        if not rendered.startswith(self._shown):  # would mean a pattern crossed the cut: a bug, not input
            raise AssertionError("stream rendering is not prefix-stable")
        piece = rendered[len(self._shown) :]
        self._shown = rendered
        return piece
