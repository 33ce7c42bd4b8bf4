"""The auction decides, on the real engine: a bid sweep through the API in bid-blind mode reuses the same K
samples (the prompt carries no bids), the served ITCTR never falls as the bid rises, and the Myerson payments
stay within ``[0, b·Y]``; the served answer is a clean sample whenever one of the K is."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from service.mechanism.exposure import FormatErrorKind, parse
from service.mechanism.types import AuctionContext
from tests.integration.conftest import Server, catalog_request

pytestmark = pytest.mark.engine

SWEEP = (1.0, 5.0, 20.0, 60.0, 100.0, 400.0)


def copy_marker_request(catalog: dict[str, Any], **options: Any) -> dict[str, Any]:
    request = catalog_request(catalog, n_ads=4, samples=8, max_tokens=48, **options)
    target = request["ads"][0]
    marker = f"@{target['title']}@[{target['id']}]"
    request["query"] = f"Write one sentence recommending {marker} and keep the text {marker} unchanged."
    return request


def test_a_bid_sweep_in_bid_blind_mode_reuses_the_samples_and_rises(server: Server, catalog: dict[str, Any]) -> None:
    options = {"bids_in_prompt": False, "selection": "optimal", "selection_temperature": 0.5,
               "payment_rule": "myerson", "return_samples": True}  # fmt: skip
    request = copy_marker_request(catalog, **options)
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        for seed in range(1, 9):  # a seed whose K samples expose the swept ad in some but not all samples
            request["options"]["seed"] = seed
            first = http.post("/v1/auctions", json=request).json()
            exposed = [request["ads"][0]["id"] in parse(t, AuctionContext.from_dict(request).ads).exposed
                       for t in first["sample_texts"]]  # fmt: skip
            if any(exposed):
                break
        else:
            pytest.fail("the model never copied the marker in 8×8 samples")
        results = []
        for bid in SWEEP:
            body = {**request, "ads": [dict(request["ads"][0], bid=bid), *request["ads"][1:]]}
            results.append(http.post("/v1/auctions", json=body).json())

    assert all(r["cache_hit"] for r in results)  # bid-blind: same prompt, same samples, whatever the bid
    assert all(r["sample_texts"] == first["sample_texts"] for r in results)
    assert all(r["mechanism"]["bids_in_prompt"] is False for r in results)
    itctr = [r["ads"][0]["itctr"] for r in results]
    exposure = [r["ads"][0]["exposure_rate"] for r in results]
    # Monotone on the same samples, up to rounding: near saturation q_k = w_k/Σw is exact to an ulp, not better.
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(itctr)), itctr
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(exposure)), exposure
    assert itctr[-1] > itctr[0]  # and it moves: at bid 400 the exposing samples dominate q
    for bid, r in zip(SWEEP, results, strict=True):
        ad = r["ads"][0]
        assert 0.0 <= ad["expected_payment"] <= bid * ad["itctr"] + 1e-9
        assert 0.0 <= ad["price_per_click"] <= bid + 1e-9
    # The response's own curve, from the same samples, agrees with the sweep.
    curved = {**request, "options": {**request["options"], "allocation_curve": list(SWEEP)}}
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        curve = http.post("/v1/auctions", json=curved).json()["ads"][0]["allocation_curve"]
    assert curve == pytest.approx(itctr, rel=1e-9, abs=1e-12)


def test_the_optimal_rule_serves_a_clean_sample_whenever_one_exists(
    client: httpx.Client, catalog: dict[str, Any]
) -> None:
    served_broken = contested = 0
    for seed in range(1, 7):
        # Raw samples (no marker grammar), so that broken ones compete with clean ones; the default rule: optimal
        request = copy_marker_request(catalog, seed=seed, return_samples=True, constrain_markers=False)
        body = client.post("/v1/auctions", json=request).json()
        assert body["mechanism"]["selection"] == "optimal"
        ads = AuctionContext.from_dict(request).ads
        errors = [len(parse(t, ads, truncated=True).errors) for t in body["sample_texts"]]
        if min(errors) == 0 < max(errors):
            contested += 1
            served_broken += body["format_errors"] > 0
        assert body["probabilities"][body["served_index"]] == body["served_probability"]
        assert sum(body["probabilities"]) == pytest.approx(1.0)
    assert contested > 0
    assert served_broken == 0


def test_decoding_under_the_marker_grammar_writes_only_whole_candidate_markers(
    client: httpx.Client, catalog: dict[str, Any]
) -> None:
    """The same seeded requests, raw and under the grammar (the default): the model breaks markers on its own
    (a neighbour's or an invented id, a missing bracket), never under the grammar, which still lets it place ads."""
    broken = {False: 0, True: 0}
    placed = {False: 0, True: 0}
    allowed = {FormatErrorKind.TRUNCATED, FormatErrorKind.DANGLING_ID}  # a cut marker; "[ID]" as plain text
    for seed in range(1, 5):
        for constrained in (False, True):
            request = copy_marker_request(catalog, seed=seed, return_samples=True, constrain_markers=constrained)
            body = client.post("/v1/auctions", json=request).json()
            ads = AuctionContext.from_dict(request).ads
            for text in body["sample_texts"]:
                exposure = parse(text, ads, truncated=True)
                broken[constrained] += sum(e.kind not in allowed for e in exposure.errors)
                placed[constrained] += len(exposure.placements)
    assert broken[False] > 0, "the raw samples broke no marker: the comparison shows nothing"
    assert broken[True] == 0
    assert placed[True] > 0
