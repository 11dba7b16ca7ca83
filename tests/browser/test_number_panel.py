"""The Number panel in a real browser: a number written stroke by stroke with the mouse, and
the docs' example picture uploaded, read by the real service with each digit's box drawn."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import open_panel, screenshot
from tests.browser.test_digit_panel import ONE, SEVEN, Stroke
from tests.conftest import REPO

pytestmark = pytest.mark.browser

PAD = (840, 280)


def write(page: Page, digits: list[list[Stroke]]) -> None:
    """Writes digits side by side, each drawn in a 280x280 cell of the 840x280 pad."""
    box = page.locator("#number-canvas").bounding_box()
    assert box is not None
    scale = box["width"] / PAD[0]
    for cell, strokes in enumerate(digits):
        for stroke in strokes:
            points = [
                (box["x"] + (x + 280 * cell) * scale, box["y"] + y * scale) for x, y in stroke
            ]
            page.mouse.move(*points[0])
            page.mouse.down()
            for point in points[1:]:
                page.mouse.move(*point, steps=8)
            page.mouse.up()


def test_a_written_number_is_read_with_its_boxes(page: Page) -> None:
    open_panel(page, "number")
    write(page, [ONE, SEVEN, ONE])
    page.click("#number-read")
    expect(page.locator("#number-answer")).to_have_attribute("data-number", "171", timeout=30_000)
    expect(page.locator("#number-value")).to_have_text("171")
    expect(page.locator("#number-digits li")).to_have_count(3)
    expect(page.locator("#number-boxes rect")).to_have_count(3)
    lefts = [
        float(x)
        for x in page.locator("#number-boxes rect").evaluate_all(
            "rects => rects.map(r => r.getAttribute('x'))"
        )
    ]
    assert lefts == sorted(lefts) and lefts[1] > 280 > lefts[0] and lefts[2] > 560
    screenshot(page, "number-panel")
    page.click("#number-clear")
    expect(page.locator("#number-answer")).to_be_hidden()
    expect(page.locator("#number-boxes rect")).to_have_count(0)


def test_an_uploaded_picture_is_read(page: Page) -> None:
    open_panel(page, "number")
    page.set_input_files("#number-upload", REPO / "docs" / "examples" / "number.png")
    expect(page.locator("#number-answer")).to_have_attribute("data-number", "361", timeout=30_000)
    expect(page.locator("#number-uploaded")).to_be_visible()
    expect(page.locator("#number-boxes rect")).to_have_count(3)
    assert page.locator("#number-boxes").get_attribute("viewBox") == "0 0 384 216"


def test_a_blank_pad_asks_for_a_number(page: Page) -> None:
    open_panel(page, "number")
    page.click("#number-read")
    expect(page.locator("#number-error")).to_contain_text("Write a number")
