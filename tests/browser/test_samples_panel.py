"""Feedback in a real browser: a drawn digit corrected with "Wrong? It was", then found,
reviewed from the keyboard and counted in the Samples panel."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import enter_admin_token, open_panel, screenshot
from tests.browser.test_digit_panel import SEVEN, draw

pytestmark = pytest.mark.browser


def test_a_corrected_drawing_is_reviewed_in_the_samples_panel(page: Page) -> None:
    open_panel(page, "digit")
    draw(page, SEVEN)
    answer = page.locator("#digit-answer")
    expect(answer).to_have_attribute("data-digit", "7")
    # The model's own answer is not offered as a correction.
    expect(page.locator('#digit-wrong button[data-label="7"]')).to_be_hidden()
    page.click('#digit-wrong button[data-label="1"]')
    expect(page.locator("#digit-feedback-status")).to_contain_text("kept as a 1")
    expect(page.locator('#digit-wrong button[data-label="1"]')).to_be_disabled()

    enter_admin_token(page)
    page.click("#tab-samples")
    tile = page.locator('#samples-grid li[data-label="1"][data-status="new"]')
    expect(tile).to_have_count(1)
    expect(tile).to_contain_text("read 7")
    assert tile.locator("img").evaluate("img => img.naturalWidth") == 28
    screenshot(page, "samples-panel")

    tile.focus()
    page.keyboard.press("a")  # accept, from the keyboard
    expect(page.locator('#samples-grid li[data-label="1"]')).to_have_count(0)  # left "new"
    accepted = page.locator("#samples-counts tr", has_text="accepted")
    expect(accepted.locator("td").nth(1)).to_have_text("1")
