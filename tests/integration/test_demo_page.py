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
            page.fill("#query", "I have flat feet. Which running shoe should I buy?")
            page.fill("#samples", "2")
            page.fill("#max_tokens", "32")
            # Count how often the answer changes on screen: a streamed answer arrives in several pieces.
            page.evaluate(
                """() => { window.answerUpdates = 0;
                    new MutationObserver(() => window.answerUpdates++)
                      .observe(document.getElementById('answer'), {childList: true, subtree: true,
                                                                   characterData: true}); }"""
            )
            page.click("#send")
            page.wait_for_selector("#auction-table", timeout=120_000)
            page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=30_000)
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)

            assert page.inner_text("#answer").strip()
            assert page.evaluate("window.answerUpdates") >= 1  # optimal: the selected sample at once
            assert page.locator("#auction-table tbody tr").count() == 5 + 3  # the category's ads + 3 others
            assert "served sample" in page.inner_text("#auction-line")
            assert "of 2" in page.inner_text("#auction-line")
        finally:
            browser.close()
