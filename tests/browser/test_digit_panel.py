"""The Digit panel in a real browser: digits drawn stroke by stroke with the mouse, and an MNIST
test image uploaded as a file, read by the real digit model."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveService, open_panel, screenshot
from tests.drawings import row_of_digits, smaller

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


ANSWER_TIMEOUT_MS = 20_000
"""A 2-core CI machine running the whole suite can take seconds to answer the first drawing."""


def expect_answer(page: Page, digit: int) -> None:
    expect(page.locator("#digit-answer")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    try:
        expect(page.locator("#digit-value")).to_have_text(str(digit), timeout=ANSWER_TIMEOUT_MS)
    except AssertionError as failure:
        # Say what the page said instead: an error line, or a request still in flight.
        shown = {
            "error": page.locator("#digit-error").text_content(),
            "status": page.locator("#digit-status").text_content(),
        }
        raise AssertionError(f"expected {digit}; the page shows {shown}") from failure
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


def test_clear_removes_the_answer_with_the_drawing(page: Page) -> None:
    open_panel(page, "digit")
    draw(page, ONE)
    expect_answer(page, 1)
    page.click("#digit-clear")
    expect(page.locator("#digit-answer")).to_be_hidden()
    expect(page.locator("#digit-summary")).to_have_text("")
    # a drawing recognised after Clear shows only its own answer
    draw(page, SEVEN)
    expect_answer(page, 7)


def written_seven(bar: int) -> bytes:
    """A 1-like down-stroke with a top bar `bar` pixels long: from a clear 1 (no bar) through
    digits that could be either to a clear 7 (a long bar), on a 280x280 white page."""
    image = Image.new("RGB", (280, 280), "white")
    pen = ImageDraw.Draw(image)
    pen.line([(170, 50), (150, 240)], fill="black", width=20)
    if bar:
        pen.line([(170 - bar, 52), (170, 50)], fill="black", width=20)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_uploaded_picture_is_shown_beside_what_the_model_saw(page: Page, tmp_path: Path) -> None:
    path = tmp_path / "seven.png"
    path.write_bytes(written_seven(bar=110))
    open_panel(page, "digit")
    page.set_input_files("#digit-upload", path)
    expect_answer(page, 7)
    uploaded = page.locator("#digit-uploaded")
    expect(page.locator("#digit-uploaded-figure")).to_be_visible()
    expect(uploaded).to_have_attribute("alt", "Your picture, seven.png")
    page.wait_for_function("() => document.querySelector('#digit-uploaded').complete")
    assert uploaded.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [280, 280]
    expect(page.locator("#digit-answer")).to_have_attribute("data-uncertain", "false")
    expect(page.locator("#digit-uncertain")).to_be_hidden()
    # The chart keeps its labels readable beside the picture: their font size, as the SVG's
    # scale draws it on screen.
    shown_px = page.locator("#digit-bars").evaluate(
        "svg => svg.getBoundingClientRect().width / svg.viewBox.baseVal.width"
        " * parseFloat(getComputedStyle(svg.querySelector('text.label')).fontSize)"
    )
    assert shown_px >= 11, shown_px
    screenshot(page, "digit-uploaded")

    draw(page, ONE)  # a drawing is its own picture: the upload is no longer shown
    expect_answer(page, 1)
    expect(page.locator("#digit-uploaded-figure")).to_be_hidden()


def test_the_camera_is_offered_for_photos(page: Page) -> None:
    open_panel(page, "digit")
    for selector in ("#digit-upload", "#digit-camera"):
        expect(page.locator(selector)).to_have_attribute("accept", "image/*")
    expect(page.locator("#digit-camera")).to_have_attribute("capture", "environment")


def test_the_camera_button_shows_on_a_phone(phone_page: Page) -> None:
    open_panel(phone_page, "digit")
    expect(phone_page.locator(".camera-button")).to_be_visible()


def test_an_uncertain_answer_is_shown_as_a_guess(
    page: Page, live_service: LiveService, tmp_path: Path
) -> None:
    """Between a 1 and a 7 there is a bar length the real model is unsure about (the service
    flags it `uncertain`, or its probability is under the page's line for a version without
    thresholds); the page must present that answer as a guess with its runner-up, not as a
    confident digit."""
    unsure = None
    with httpx.Client(base_url=live_service.url, timeout=30) as http:
        for bar in range(20, 100, 2):
            files = {"file": ("seven.png", written_seven(bar), "image/png")}
            answer = http.post("/digit", files=files).json()
            if answer.get("uncertain") or answer["probability"] < 0.9:
                unsure = (bar, answer)
                break
    assert unsure is not None, "no bar length between a 1 and a 7 left the model unsure"
    bar, answer = unsure
    path = tmp_path / f"unsure-{bar}.png"
    path.write_bytes(written_seven(bar))

    open_panel(page, "digit")
    page.set_input_files("#digit-upload", path)
    result = page.locator("#digit-answer")
    expect(result).to_have_attribute("data-uncertain", "true")
    expect(result).to_have_attribute("data-digit", str(answer["digit"]))
    expect(page.locator("#digit-value")).to_have_text(f"{answer['digit']}?")
    note = page.locator("#digit-uncertain")
    expect(note).to_be_visible()
    expect(note).to_contain_text(re.compile(rf"Not sure: perhaps {answer['digit']} \(\d+\.\d%\)"))
    expect(page.locator("#digit-summary")).to_contain_text("The model is not sure")
    screenshot(page, "digit-unsure")


def test_a_picture_that_may_hold_two_digits_points_to_the_number_panel(
    page: Page, mnist, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A 2 with a smaller 1 beside it: the model alone reads a sure 2; the service flags the
    answer as maybe several digits, and the page says so, naming the Number panel."""
    two, one = (mnist.x_test[np.flatnonzero(mnist.y_test == label)[0]] for label in (2, 1))
    path = tmp_path / "two-and-a-small-one.png"
    Image.fromarray(row_of_digits([two, smaller(one, 0.6)])).save(path)
    open_panel(page, "digit")
    page.set_input_files("#digit-upload", path)
    expect(page.locator("#digit-answer")).to_have_attribute("data-uncertain", "true")
    note = page.locator("#digit-uncertain")
    expect(note).to_be_visible()
    expect(note).to_contain_text("may be several digits side by side: the Number panel")
    screenshot(page, "digit-maybe-a-number")


def blank_paper() -> bytes:
    """A photo of blank paper: grey with sensor noise, no ink at all."""
    noise = np.random.default_rng(0).normal(0, 3, (240, 320)) + 225
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_a_picture_holding_no_digit_is_said_so_and_still_offers_the_digits(
    page: Page, live_service: LiveService, tmp_path: Path
) -> None:
    """An answer of 422 no_digit_found (from the preprocessing here, or from the served
    version's reject option): the page says the picture does not look like a digit, shows no
    digit, and still offers "It was: 0 ... 9"."""
    with httpx.Client(base_url=live_service.url, timeout=30) as http:
        files = {"file": ("blank.jpg", blank_paper(), "image/jpeg")}
        refused = http.post("/digit", files=files)
    assert refused.status_code == 422 and refused.json()["code"] == "no_digit_found"
    path = tmp_path / "blank.jpg"
    path.write_bytes(blank_paper())

    open_panel(page, "digit")
    page.set_input_files("#digit-upload", path)
    result = page.locator("#digit-answer")
    expect(result).to_have_attribute("data-no-digit", "true")
    expect(page.locator("#digit-no-digit")).to_be_visible()
    expect(page.locator("#digit-no-digit")).to_contain_text("This doesn't look like a digit")
    expect(page.locator("#digit-headline")).to_be_hidden()
    expect(page.locator("#digit-correct")).to_be_hidden()
    expect(page.locator("#digit-error")).to_be_hidden()
    expect(page.locator("#digit-feedback-question")).to_have_text("Was there a digit?")
    keys = page.locator("#digit-wrong button")
    expect(keys).to_have_count(10)
    for digit in range(10):
        expect(keys.nth(digit)).to_be_visible()
    screenshot(page, "digit-no-digit")

    draw(page, ONE)  # a digit afterwards is answered as a digit again
    expect_answer(page, 1)
    expect(page.locator("#digit-no-digit")).to_be_hidden()
    expect(page.locator("#digit-correct")).to_be_visible()
