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
    expect(page.locator("#digit-feedback-status")).to_contain_text("kept, labelled 1, for review")
    expect(page.locator('#digit-wrong button[data-label="1"]')).to_be_disabled()

    enter_admin_token(page)
    page.click("#tab-samples")
    tile = page.locator('#samples-grid li[data-label="1"][data-status="new"]')
    expect(tile).to_have_count(1)
    expect(tile).to_contain_text("read 7")
    expect(tile.locator(".sample-status")).to_have_text("new: to review")
    sample = tile.get_attribute("data-id")
    assert tile.locator("img").evaluate("img => img.naturalWidth") == 28
    screenshot(page, "samples-panel")

    # The upload itself, beside the 28x28 made from it: the canvas's 280x280 drawing.
    tile.get_by_role("button", name="Original upload").click()
    original = page.locator("#sample-original-dialog")
    expect(original).to_be_visible()
    page.wait_for_function("() => document.querySelector('#sample-original-image').complete")
    assert page.locator("#sample-original-image").evaluate("img => img.naturalWidth") > 28
    page.click("#sample-original-close")
    expect(original).to_be_hidden()

    tile.focus()
    page.keyboard.press("a")  # accept, from the keyboard
    expect(page.locator('#samples-grid li[data-label="1"]')).to_have_count(0)  # left "new"
    accepted = page.locator("#samples-counts tr", has_text="accepted")
    expect(accepted.locator("td").nth(1)).to_have_text("1")

    # Every status at once: each card says its own in words, and none looks disabled.
    page.select_option("#samples-status", "")
    card = page.locator(f'#samples-grid li[data-id="{sample}"]')
    expect(card.locator(".sample-status")).to_have_text("accepted")
    card.get_by_role("button", name="Reject").click()
    expect(card).to_have_attribute("data-status", "rejected")
    expect(card.locator(".sample-status")).to_have_text("rejected")
    assert card.evaluate("li => getComputedStyle(li).opacity") == "1"
