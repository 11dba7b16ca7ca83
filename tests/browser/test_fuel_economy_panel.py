"""The Fuel economy panel in a real browser: the form built from /mpg/features, filled from the
pick-list of real cars, answered by the real MPG model."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from service.routes.mpg import EXAMPLE_CARS_FILE
from tests.browser.conftest import open_panel, screenshot
from training.cars import LITRES_PER_100KM_FACTOR

pytestmark = pytest.mark.browser

PICKED = "chevrolet nova"  # a typical car of the data set, well inside the training ranges


def example_cars() -> list[dict]:  # type: ignore[type-arg]
    cars: list[dict] = json.loads(EXAMPLE_CARS_FILE.read_text(encoding="utf-8"))  # type: ignore[type-arg]
    return cars


def shown_number(page: Page, selector: str) -> float:
    return float(page.locator(selector).text_content() or "nan")


def test_a_car_picked_from_the_list_fills_the_form_and_is_predicted(page: Page) -> None:
    cars = example_cars()
    index, car = next((i, c) for i, c in enumerate(cars) if c["name"].startswith(PICKED))

    open_panel(page, "mpg")
    page.select_option("#mpg-example", str(index))
    for name in ("cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year"):
        assert float(page.input_value(f"#mpg-{name}")) == float(car[name]), name
    assert page.input_value("#mpg-origin") == car["origin"]

    expect(page.locator("#mpg-answer")).to_be_visible()
    mpg = shown_number(page, "#mpg-value")
    litres = shown_number(page, "#mpg-litres")
    assert abs(mpg - car["mpg"]) <= 0.35 * car["mpg"], (mpg, car["mpg"])
    assert abs(litres - LITRES_PER_100KM_FACTOR / mpg) < 0.2
    expect(page.locator("#mpg-recorded")).to_contain_text(f"{car['mpg']:g} mpg")
    expect(page.locator("#mpg-warnings-box")).to_be_hidden()
    screenshot(page, "mpg")


def test_a_car_outside_the_training_data_gets_a_warning(page: Page) -> None:
    open_panel(page, "mpg")
    page.fill("#mpg-weight", "9000")
    expect(page.locator("#mpg-example")).to_have_value("")  # edited: no longer the picked car
    page.click("#mpg-predict")
    expect(page.locator("#mpg-warnings-box")).to_be_visible()
    expect(page.locator("#mpg-warnings")).to_contain_text("weight")
    expect(page.locator("#mpg-recorded")).to_be_hidden()
    screenshot(page, "mpg-warning")


def test_values_outside_the_accepted_range_are_refused_before_sending(page: Page) -> None:
    open_panel(page, "mpg")
    page.fill("#mpg-cylinders", "40")  # over the accepted range: the browser itself objects
    page.click("#mpg-predict")
    assert page.eval_on_selector("#mpg-cylinders", "input => !input.validity.valid")
    expect(page.locator("#mpg-answer")).to_be_hidden()
