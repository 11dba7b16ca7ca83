"""The Models panel in a real browser: versions with their metrics, pinning and unpinning, and
the admin token the service requires for both."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ADMIN_TOKEN, open_panel

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
        expect(row.locator("td.promotion")).to_have_text(
            "promoted served whatever its test metrics, as its trainer asked"
        )
        expect(row.locator("td[data-state]")).to_have_text("serving")
        # Nothing to pin in the served version's row: "Keep" beside "Serving version N" does it.
        expect(row.get_by_role("button")).to_have_count(0)


def test_pinning_asks_for_the_admin_token_once_and_then_works(page: Page) -> None:
    open_panel(page, "models")
    card = page.locator("article[data-model=digit]")
    served = card.get_attribute("data-served")
    pin = card.get_by_role("button", name=f"Keep v{served}")
    dialog = page.locator("#token-dialog")

    pin.click()  # no token yet: the service refuses, and the page asks for it
    expect(dialog).to_be_visible()
    expect(page.locator("#token-dialog-reason")).to_contain_text("needs the admin token")
    page.click("#token-dialog-cancel")  # declined: the refusal is shown
    expect(dialog).to_be_hidden()
    expect(page.locator("#models-error")).to_contain_text("admin token")

    pin.click()
    page.fill("#token-dialog-input", "not-the-token")
    page.click("#token-dialog-use")
    expect(page.locator("#token-dialog-reason")).to_have_text("the admin token is wrong")
    page.fill("#token-dialog-input", ADMIN_TOKEN)
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#models-error")).to_be_hidden()
    expect(card).to_contain_text(f"Serving version {served}, pinned.")
    expect(card.locator(".after-unpin")).to_have_text(
        f"Unpin would serve version {served}, the newest promoted version."
    )
    # kept for the session: the next admin action is not asked again, and Models shows it
    expect(page.locator("#admin-token")).to_have_value(ADMIN_TOKEN)
    card.get_by_role("button", name="Unpin").click()
    expect(card).to_contain_text(f"Serving version {served}, the newest promoted version.")
    expect(dialog).to_be_hidden()
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator("#admin-token")).to_have_value(ADMIN_TOKEN)
    expect(card).to_have_attribute("data-served", served or "")
