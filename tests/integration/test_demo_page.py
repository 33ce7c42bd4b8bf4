"""The demo chat page in a real headless browser (Debian's Chromium driven by Playwright): type a question,
see the answer stream in and the auction summary appear."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.integration.conftest import Server

pytestmark = pytest.mark.engine

# Chromium must not reach out to Google's services: this machine has no network beyond the package registries.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_the_demo_page_streams_an_answer_and_shows_the_auction(server: Server, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium not found: `make test` installs Debian's chromium package"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{server.base_url}/")
            page.wait_for_function("document.querySelectorAll('#category option').length > 0")
            page.select_option("#category", "running")
            # Ask the weak default model to copy a marker (DESIGN.md §7), so that an ad is likely shown.
            marker = "@ArchGuard Stability Runner@[Ad-7001]"
            page.fill("#query", f"Write one sentence recommending {marker} and keep the text {marker} unchanged.")
            page.fill("#samples", "6")
            page.fill("#max_tokens", "40")
            # Count how often the answer changes on screen.
            page.evaluate(
                """() => { window.answerUpdates = 0;
                    new MutationObserver(() => window.answerUpdates++)
                      .observe(document.getElementById('answer'), {childList: true, subtree: true,
                                                                   characterData: true}); }"""
            )
            links = page.locator("#answer a[rel~='sponsored']")
            # The page sends no seed, so a repeated ask would reuse the cached samples: each retry changes K, which
            # makes it a new generation. 6+ samples almost always include a copied marker.
            for k in ("6", "7", "8"):
                page.fill("#samples", k)
                page.click("#send")
                page.wait_for_selector("#auction-table", timeout=120_000)
                page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=60_000)
                if links.count():
                    break
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)

            assert page.inner_text("#answer").strip()
            assert links.count() >= 1, page.inner_text("#answer")
            # The label is the service's and survives rendering on the page, right after the link.
            assert f"{links.first.inner_text()} (Sponsored)" in page.inner_text("#answer")
            assert page.evaluate("window.answerUpdates") >= 1  # optimal: the selected sample at once
            assert page.locator("#auction-table tbody tr").count() == 5 + 3  # the category's ads + 3 others
            assert "served sample" in page.inner_text("#auction-line")
            assert f"of {k}" in page.inner_text("#auction-line")
        finally:
            browser.close()
