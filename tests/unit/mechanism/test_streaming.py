from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.mechanism.exposure import parse, render
from service.mechanism.streaming import StreamRenderer, stable_cut
from service.mechanism.types import Ad

ADS = (
    Ad("Ad-1", "ArchGuard Runner", "https://e.com/1", 30.0),
    Ad("Ad-22", "Brew Pro", "https://e.com/22", 10.0),
)


def link(ad_id: str) -> str:
    return f"https://ads.test/c/{ad_id}"


def stream(text: str, cuts: list[int]) -> list[str]:
    renderer = StreamRenderer(ADS, link)
    pieces, last = [], 0
    for cut in sorted(set(cuts)):
        pieces.append(renderer.feed(text[last:cut]))
        last = cut
    pieces.append(renderer.feed(text[last:]))
    pieces.append(renderer.finish())
    return pieces


def test_a_marker_appears_only_once_complete_and_then_at_once() -> None:
    renderer = StreamRenderer(ADS, link)
    assert renderer.feed("Try the ") == "Try the"  # a trailing space waits: a stripped "[ID]" would take it
    assert renderer.feed("@Arch") == " "  # "@Arch…" could be a marker: held back
    assert renderer.feed("Guard Runner@[Ad") == ""
    assert renderer.feed("-1]") == "[ArchGuard Runner](https://ads.test/c/Ad-1)"  # complete: shown at once
    assert renderer.feed(" today.") == " today."
    assert renderer.feed(" More ") == " More"
    assert renderer.finish() == " "


def test_a_broken_marker_is_stripped_as_soon_as_it_is_decided() -> None:
    renderer = StreamRenderer(ADS, link)
    assert renderer.feed("See @Nike Air@[Ad-9") == "See "
    assert renderer.feed("] now") == "Nike Air now"
    assert renderer.feed(" [Ad-22]") == ""
    assert renderer.finish() == ""  # the stray id and the space before it are gone


def test_an_at_sign_that_cannot_be_a_marker_is_not_held() -> None:
    renderer = StreamRenderer(ADS, link)
    assert renderer.feed("mail me@home.com\n") == "mail me@home.com\n"
    assert renderer.feed("[1] a footnote") == "[1] a footnote"  # not a candidate id


def test_unfinished_marker_at_the_end_is_released_as_the_parser_sees_it() -> None:
    renderer = StreamRenderer(ADS, link)
    assert renderer.feed("Buy @ArchGuard Runner@") == "Buy "
    assert renderer.finish() == "ArchGuard Runner"  # "@Title@" without an id: a format error, stripped


def test_hold_back_is_bounded() -> None:
    text = "@" + "x" * 400
    assert stable_cut(text, ADS) == len(text)  # no marker can be that long: nothing held


pieces_of_text = st.lists(
    st.sampled_from(
        [
            "Hello ",
            "world. ",
            "@ArchGuard Runner@[Ad-1]",
            "@Brew Pro@[Ad-22]",
            "@Brew Pro@",
            "[Ad-22]",
            "[Ad-1",
            "@Nike@[Ad-9]",
            "@",
            "[",
            "]",
            "@[",
            "\n",
            "Ad-1",
            "email@x.com ",
            "@ArchGuard",
            " Runner@[Ad-",
        ]
    ),
    max_size=25,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=pieces_of_text, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_streamed_pieces_add_up_to_the_final_rendering(text: str, cuts: list[int]) -> None:
    cuts = [c for c in cuts if c <= len(text)]
    pieces = stream(text, cuts)
    assert "".join(pieces) == render(parse(text, ADS), link)


@settings(max_examples=300, deadline=None)
@given(text=pieces_of_text, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_no_raw_marker_syntax_is_ever_shown(text: str, cuts: list[int]) -> None:
    final = render(parse(text, ADS), link)
    renderer = StreamRenderer(ADS, link)
    last = 0
    for cut in [*sorted({c for c in cuts if c <= len(text)}), len(text)]:
        renderer.feed(text[last:cut])
        last = cut
        shown = renderer.shown
        for ad in ADS:
            assert ad.marker not in shown  # a complete marker is never shown raw, at any moment
            # A stray "[ID]" may only appear if the final answer has it too: stripping "[Ad-22]" out of
            # "[Ad-1[Ad-22]]" leaves the plain text "[Ad-1]" (no link, nothing billed), whole or streamed alike.
            assert f"[{ad.id}]" not in shown or f"[{ad.id}]" in final
