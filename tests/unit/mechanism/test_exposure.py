from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from service.mechanism.exposure import MARKER_OPENERS, FormatErrorKind, marker_regex, parse, render
from service.mechanism.types import Ad


def link(ad_id: str) -> str:
    return f"https://ads.test/c/{ad_id}"


def test_exact_marker_exposes_the_ad(running_ads: tuple[Ad, ...]) -> None:
    text = "Get a stable shoe like @ArchGuard Stability Runner@[Ad-7001] for flat feet."
    exposure = parse(text, running_ads)
    assert exposure.exposed == ("Ad-7001",)
    assert exposure.errors == ()
    assert exposure.first_position("Ad-7001") == 23 / len(text)
    assert exposure.rank("Ad-7001") == 1
    assert exposure.first_position("Ad-7002") is None
    assert render(exposure, link) == (
        "Get a stable shoe like [ArchGuard Stability Runner](https://ads.test/c/Ad-7001) for flat feet."
    )


def test_no_marker_no_exposure(running_ads: tuple[Ad, ...]) -> None:
    exposure = parse("Look for arch support and a wide toe box.", running_ads)
    assert exposure.exposed == ()
    assert exposure.errors == ()
    assert exposure.n_ads == 0
    assert render(exposure, link) == "Look for arch support and a wide toe box."


def test_repeated_marker_counts_once_and_ranks_by_first_appearance(running_ads: tuple[Ad, ...]) -> None:
    text = (
        "@CloudStep Orthotic Insoles@[Ad-7002] help. So does @ArchGuard Stability Runner@[Ad-7001]. "
        "Again: @CloudStep Orthotic Insoles@[Ad-7002]."
    )
    exposure = parse(text, running_ads)
    assert exposure.exposed == ("Ad-7002", "Ad-7001")
    assert exposure.n_ads == 2
    assert exposure.rank("Ad-7001") == 2
    assert len(exposure.placements) == 3
    assert render(exposure, link).count("https://ads.test/c/Ad-7002") == 2


def test_wrong_title_or_unknown_id_is_a_format_error_and_stripped(running_ads: tuple[Ad, ...]) -> None:
    text = "Try @ArchGuard Runner@[Ad-7001] or @Nike Air@[Ad-1234]."
    exposure = parse(text, running_ads)
    assert exposure.exposed == ()
    assert [e.kind for e in exposure.errors] == [FormatErrorKind.TITLE_MISMATCH, FormatErrorKind.UNKNOWN_AD]
    assert render(exposure, link) == "Try ArchGuard Runner or Nike Air."


def test_title_without_id_and_id_without_title_are_format_errors(running_ads: tuple[Ad, ...]) -> None:
    text = "Buy @CloudStep Orthotic Insoles@ now [Ad-7001] and @ArchGuard Stability Runner@[Ad-7001]."
    exposure = parse(text, running_ads)
    assert exposure.exposed == ("Ad-7001",)
    assert [e.kind for e in exposure.errors] == [FormatErrorKind.MISSING_ID, FormatErrorKind.DANGLING_ID]
    assert render(exposure, link) == (
        "Buy CloudStep Orthotic Insoles now and [ArchGuard Stability Runner](https://ads.test/c/Ad-7001)."
    )


def test_case_matters_for_titles(running_ads: tuple[Ad, ...]) -> None:
    exposure = parse("@archguard stability runner@[Ad-7001]", running_ads)
    assert exposure.exposed == ()
    assert exposure.errors[0].kind is FormatErrorKind.TITLE_MISMATCH


def test_email_addresses_are_not_markers(running_ads: tuple[Ad, ...]) -> None:
    exposure = parse("Write to help@example.com or sales@example.com [today].", running_ads)
    assert exposure.exposed == ()
    assert exposure.errors == ()


def test_an_id_without_brackets_is_stripped_with_its_marker(running_ads: tuple[Ad, ...]) -> None:
    text = "Try @BrewMaster Burr Grinder@Ad-9001, it grinds evenly."
    exposure = parse(text, running_ads)
    assert [e.kind.value for e in exposure.errors] == ["bare_id"]
    assert render(exposure, lambda _: "L") == "Try BrewMaster Burr Grinder, it grinds evenly."  # no "GrinderAd-9001"


def test_a_truncated_marker_is_never_shown(running_ads: tuple[Ad, ...]) -> None:
    for tail in ("@ArchGuard Stability Runner@[Ad-70", "@ArchGuard Stab", "@ArchGuard Stability Runner@"):
        exposure = parse("Look for support: " + tail, running_ads, truncated=True)
        assert exposure.errors
        assert render(exposure, lambda _: "L") == "Look for support: "
    # A complete answer is not suspected of truncation.
    assert not parse("Email me @home", running_ads).errors


# The marker grammar decoding is constrained to (vLLM structured outputs). Its regex uses only syntax that
# Python's re shares with xgrammar, so re.fullmatch is the language it defines.
TRICKY = Ad("Ad-1.5", "C++ (2nd ed.) x? Guide*", "https://example.com/c", 9.0)
GRAMMAR_ADS = (
    Ad("Ad-7001", "ArchGuard Stability Runner", "https://example.com/a", 35.0),
    Ad("Ad-7002", "CloudStep Orthotic Insoles", "https://example.com/c", 12.5),
    TRICKY,
)

FRAGMENTS = [
    "Try ",
    "a stable shoe. ",
    "\n",
    "**",
    "BassPod Earbuds",  # a title written without its "@": a marker may not be glued to it
    "[Ad-7001] ",
    "@ArchGuard Stability Runner@[Ad-7001]",
    "@CloudStep Orthotic Insoles@[Ad-7002]",
    "@ArchGuard Stability Runner@[Ad-7002]",  # a neighbour's id
    "@ArchGuard Stability Runner@Ad-7001",  # bare id
    "@CloudStep Orthotic Insoles@",  # no id
    "@Some Shoe@[Ad-1234]",  # not a candidate
    "mail me @ home",
    f"@{TRICKY.title}@[{TRICKY.id}]",
    "@C++ (2nd ed.) Guide@[Ad-1.5]",  # the metacharacters must match literally, not as a pattern
]
WHOLE_MARKERS = re.compile("|".join(re.escape(f"@{ad.title}@[{ad.id}]") for ad in GRAMMAR_ADS))


def well_formed(text: str) -> bool:
    """Every "@" opens a candidate's whole marker, at the start or after an opener (not glued to a word)."""
    starts = [m.start() for m in WHOLE_MARKERS.finditer(text)]
    return "@" not in WHOLE_MARKERS.sub("", text) and all(s == 0 or text[s - 1] in MARKER_OPENERS for s in starts)


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=8))
def test_the_marker_grammar_admits_exactly_the_well_formed_texts(parts: list[str]) -> None:
    text = "".join(parts)
    admitted = re.fullmatch(marker_regex(GRAMMAR_ADS), text) is not None
    assert admitted == well_formed(text)
    if admitted:  # nothing marker-shaped is broken ("[ID]" alone is plain text)
        kinds = {e.kind for e in parse(text, GRAMMAR_ADS).errors} - {FormatErrorKind.DANGLING_ID}
        assert kinds == set()
        assert len(parse(text, GRAMMAR_ADS).placements) == text.count("@") // 2


def test_a_marker_glued_to_a_word_is_outside_the_grammar() -> None:
    rx = marker_regex(GRAMMAR_ADS)
    assert re.fullmatch(rx, "Try @ArchGuard Stability Runner@[Ad-7001].") is not None
    assert re.fullmatch(rx, "**@ArchGuard Stability Runner@[Ad-7001]**") is not None
    assert re.fullmatch(rx, "BassPod Earbuds@ArchGuard Stability Runner@[Ad-7001]") is None


def test_the_marker_grammar_without_candidates_forbids_markers() -> None:
    assert re.fullmatch(marker_regex(()), "No ads here.\n") is not None
    assert re.fullmatch(marker_regex(()), "@Some Shoe@[Ad-1]") is None
