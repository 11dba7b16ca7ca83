"""The Digit panel in a real browser: digits drawn stroke by stroke with the mouse, and an MNIST
test image uploaded as a file, read by the real digit model."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import open_panel, screenshot

pytestmark = pytest.mark.browser

Stroke = list[tuple[float, float]]

ONE: list[Stroke] = [[(152, 42), (148, 90), (143, 150), (138, 238)]]
"""A single slightly slanted down-stroke, the way most people write a 1."""
SEVEN: list[Stroke] = [
    [(72, 58), (140, 56), (212, 58)],  # the bar
    [(212, 58), (180, 120), (150, 180), (126, 240)],  # the stem, drawn as a second stroke
]


def draw(page: Page, strokes: list[Stroke]) -> None:
    """Draws strokes given in the canvas's own 280x280 pixels with real mouse moves."""
    box = page.locator("#digit-canvas").bounding_box()
    assert box is not None
    scale = box["width"] / 280

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * scale, box["y"] + y * scale

    for stroke in strokes:
        page.mouse.move(*at(*stroke[0]))
        page.mouse.down()
        for point in stroke[1:]:
            page.mouse.move(*at(*point), steps=8)
        page.mouse.up()


def expect_answer(page: Page, digit: int) -> None:
    expect(page.locator("#digit-answer")).to_be_visible()
    expect(page.locator("#digit-value")).to_have_text(str(digit))
    expect(page.locator("#digit-summary")).to_contain_text(f"as {digit}")
    assert page.locator("#digit-bars .bar").count() == 10
    assert page.locator("#digit-bars .bar.best text.label").text_content() == str(digit)
    seen = page.locator("#digit-preprocessed")
    assert (seen.get_attribute("src") or "").startswith("data:image/png;base64,")
    assert seen.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [28, 28]


def test_a_drawn_one_is_recognised_when_the_stroke_ends(page: Page) -> None:
    open_panel(page, "digit")
    expect(page.locator("#digit-auto")).to_be_checked()
    draw(page, ONE)
    expect_answer(page, 1)
    screenshot(page, "digit-one")


def test_a_seven_drawn_stroke_by_stroke_is_recognised_on_request(page: Page) -> None:
    open_panel(page, "digit")
    page.uncheck("#digit-auto")
    draw(page, SEVEN[:1])
    draw(page, SEVEN[1:])
    page.wait_for_timeout(800)  # longer than the auto-recognise delay: nothing may be sent
    expect(page.locator("#digit-answer")).to_be_hidden()
    page.click("#digit-recognise")
    expect_answer(page, 7)
    screenshot(page, "digit-seven")

    page.click("#digit-clear")
    page.click("#digit-recognise")
    expect(page.locator("#digit-error")).to_contain_text("Draw a digit")


@pytest.mark.data
def test_an_uploaded_mnist_test_image_is_recognised(page: Page, mnist, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = 1  # any test image; the label comes from the data set, not from this test
    label = int(mnist.y_test[index])
    path = tmp_path / f"mnist-test-{index}.png"
    Image.fromarray(mnist.x_test[index]).save(path)

    open_panel(page, "digit")
    page.set_input_files("#digit-upload", path)
    expect_answer(page, label)
    expect(page.locator("#digit-summary")).to_contain_text(path.name)
    screenshot(page, "digit-upload")
