"""The Training panel's form, read as a person would: help text without developer jargon, ranges
in words, the MLP's own defaults, and choices wide enough to read. No job is started."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, open_panel
from training.hyperparameters import DigitHyperparameters

pytestmark = pytest.mark.browser

DASH = "\N{EN DASH}"


def test_the_help_text_speaks_to_people(page: Page) -> None:
    open_panel(page, "training")
    page.select_option("#training-model", "digit")
    help_text = page.locator("#training-model-help").text_content() or ""
    assert "x-mlp-default" not in help_text and "JSON schema" not in help_text
    assert "with architecture mlp" in help_text
    expect(page.locator("#hp-learning_rate-hint")).to_contain_text("more than 0, at most 10")
    expect(page.locator("#hp-epochs-hint")).to_contain_text(f"0{DASH}100")
    assert "above" not in (page.locator("#training-fields").text_content() or "")


def test_the_mlp_shows_its_own_defaults(page: Page) -> None:
    open_panel(page, "training")
    page.select_option("#training-model", "digit")
    cnn_epochs = DigitHyperparameters.model_fields["epochs"].default
    expect(page.locator("#hp-epochs")).to_have_attribute("placeholder", f"default {cnn_epochs}")
    page.select_option("#hp-architecture", "mlp")
    expect(page.locator("#hp-epochs")).to_have_attribute("placeholder", "default 2")
    expect(page.locator("#hp-hidden_units")).to_have_attribute("placeholder", "default 512")
    initializer = page.locator("#hp-kernel_initializer option").first
    expect(initializer).to_have_text("default glorot_uniform")


@pytest.mark.parametrize("viewport", [None, PHONE])
def test_select_boxes_show_their_whole_choice(page: Page, viewport: dict | None) -> None:  # type: ignore[type-arg]
    if viewport:
        page.set_viewport_size(viewport)
    open_panel(page, "training")
    page.select_option("#training-model", "digit")
    page.select_option("#hp-architecture", "mlp")
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('#training-fields select')].filter((select) => {
            const probe = document.createElement('span');
            probe.style.font = getComputedStyle(select).font;
            probe.style.position = 'absolute';
            probe.style.whiteSpace = 'pre';
            probe.textContent = select.options[select.selectedIndex].textContent;
            document.body.append(probe);
            const text = probe.getBoundingClientRect().width;
            probe.remove();
            const style = getComputedStyle(select);
            const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
            return text + padding + 20 > select.clientWidth;  // 20 px: the drop-down arrow
        }).map((select) => select.id)"""
    )
    assert clipped == []
