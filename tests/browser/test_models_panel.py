"""The Models panel in a real browser: versions with their metrics, pinning and unpinning, and
the admin token the service requires for both."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import enter_admin_token, open_panel

pytestmark = pytest.mark.browser


def test_versions_are_listed_with_their_metrics(page: Page) -> None:
    open_panel(page, "models")
    for name, metric in (("digit", "accuracy"), ("mpg", "mae")):
        card = page.locator(f"article[data-model={name}]")
        served = card.get_attribute("data-served")
        assert served, f"{name} serves nothing"
        row = card.locator(f"tr[data-version='{served}']")
        expect(row).to_contain_text("served")
        expect(row.locator("td.metrics")).to_contain_text(metric)
        expect(row.locator("td.promotion")).to_have_text("promoted promote=always")


def test_pinning_needs_the_admin_token_and_then_works(page: Page) -> None:
    open_panel(page, "models")
    card = page.locator("article[data-model=digit]")
    served = card.get_attribute("data-served")
    pin = card.get_by_role("button", name=f"Pin v{served}")

    pin.click()  # no token yet: the service refuses and the page says why
    expect(page.locator("#models-error")).to_contain_text("admin token")

    enter_admin_token(page, "not-the-token")
    pin.click()
    expect(page.locator("#models-error")).to_contain_text("the admin token is wrong")

    enter_admin_token(page)
    pin.click()
    expect(page.locator("#models-error")).to_be_hidden()
    expect(card).to_contain_text(f"Serving version {served}, pinned.")
    expect(card.locator(".after-unpin")).to_have_text(
        f"Unpin would serve version {served}, the newest promoted version."
    )
    card.get_by_role("button", name="Unpin").click()
    expect(card).to_contain_text(f"Serving version {served}, the newest promoted version.")
    expect(card).to_have_attribute("data-served", served or "")
