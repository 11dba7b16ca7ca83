"""The page as a whole: keyboard-operable tabs, labelled controls, no asset from outside the
service, and a layout that fits a phone. Screenshots of every panel at both widths go to
tests/artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import open_panel, screenshot

pytestmark = pytest.mark.browser

PANELS = ("digit", "number", "mpg", "training", "models", "samples")


def test_the_tabs_work_with_the_keyboard(page: Page) -> None:
    open_panel(page, "digit")
    page.focus("#tab-digit")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-number")).to_be_focused()
    expect(page.locator("#tab-number")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-number")).to_be_visible()
    expect(page.locator("#panel-digit")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.locator("#panel-samples")).to_be_visible()
    assert page.evaluate("location.hash") == "#samples"
    # An admin panel shown without the token says so; it does not open a dialog on its own.
    expect(page.locator("#samples-error")).to_contain_text("Refresh")
    expect(page.locator("#token-dialog")).to_be_hidden()
    page.keyboard.press("Home")
    expect(page.locator("#panel-digit")).to_be_visible()
    page.keyboard.press("Tab")  # into the panel, not along the tabs
    expect(page.locator("#tab-number")).not_to_be_focused()


def test_every_control_has_a_label(page: Page) -> None:
    open_panel(page, "digit")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
            .filter((control) => !(control.labels?.length || control.getAttribute("aria-label")
                                   || control.textContent.trim()))
            .map((control) => control.id || control.outerHTML)"""
    )
    assert unlabelled == []


def test_the_page_loads_nothing_from_outside_the_service(page: Page) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    for panel in PANELS:
        open_panel(page, panel)
    base = page.evaluate("location.origin")
    outside = [url for url in requested if not url.startswith((base, "data:"))]
    assert requested and outside == []


@pytest.mark.parametrize("panel", PANELS)
def test_each_panel_fits_a_desktop_screen(page: Page, panel: str) -> None:
    open_panel(page, panel)
    expect(page.locator(f"#panel-{panel}")).to_be_visible()
    screenshot(page, f"desktop-{panel}")


@pytest.mark.parametrize("panel", PANELS)
def test_each_panel_fits_a_phone_screen(phone_page: Page, panel: str) -> None:
    open_panel(phone_page, panel)
    expect(phone_page.locator(f"#panel-{panel}")).to_be_visible()
    widths = phone_page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"{panel} scrolls sideways: {widths}"
    screenshot(phone_page, f"phone-{panel}")


def test_every_tab_is_in_sight_on_a_phone(phone_page: Page) -> None:
    open_panel(phone_page, "digit")
    for panel in PANELS:
        expect(phone_page.locator(f"#tab-{panel}")).to_be_in_viewport(ratio=1.0)


def test_badges_keep_their_size_in_a_phone_s_version_cards(phone_page: Page) -> None:
    """A card row lays each cell out as a flex row: a badge beside a long reason must not
    stretch into a tall oval."""
    open_panel(phone_page, "models")
    badges = phone_page.locator("td.promotion .badge")
    expect(badges.first).to_be_visible()
    for index in range(badges.count()):
        height, font = badges.nth(index).evaluate(
            "b => [b.getBoundingClientRect().height, parseFloat(getComputedStyle(b).fontSize)]"
        )
        assert height <= 2 * font, (height, font)
