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

DASH = "\N{EN DASH}"  # how the page writes ranges
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
    expect(page.locator("#mpg-example")).to_have_value("0")  # the car it was edited from
    page.click("#mpg-predict")
    expect(page.locator("#mpg-warnings-box")).to_be_visible()
    expect(page.locator("#mpg-warnings")).to_contain_text("weight")
    expect(page.locator("#mpg-recorded")).to_contain_text("Edited from the Chevrolet Chevelle")
    screenshot(page, "mpg-warning")


def test_an_answer_is_marked_stale_once_the_form_changes(page: Page) -> None:
    cars = example_cars()
    index, car = next((i, c) for i, c in enumerate(cars) if c["name"].startswith(PICKED))
    open_panel(page, "mpg")
    page.select_option("#mpg-example", str(index))
    answer = page.locator("#mpg-answer")
    expect(answer).to_be_visible()
    expect(page.locator("#mpg-stale")).to_be_hidden()
    before = shown_number(page, "#mpg-value")

    page.fill("#mpg-weight", str(car["weight"] + 1500))
    expect(page.locator("#mpg-stale")).to_be_visible()
    expect(answer).to_have_class("result stale")
    expect(page.locator("#mpg-example")).to_have_value(str(index))  # the picker is kept

    page.click("#mpg-predict")
    expect(page.locator("#mpg-stale")).to_be_hidden()
    expect(answer).to_have_class("result")
    expect(page.locator("#mpg-recorded")).to_contain_text(f"which recorded {car['mpg']:g} mpg")
    assert shown_number(page, "#mpg-value") < before  # 1500 lbs heavier: fewer miles per gallon


@pytest.mark.parametrize("year", ["76", "1976"])
def test_the_model_year_takes_both_spellings(page: Page, year: str) -> None:
    open_panel(page, "mpg")
    page.fill("#mpg-model_year", year)
    assert page.eval_on_selector("#mpg-model_year", "input => input.validity.valid")
    page.click("#mpg-predict")
    expect(page.locator("#mpg-answer")).to_be_visible()
    expect(page.locator("#mpg-error")).to_be_hidden()
    hint = page.locator("#mpg-model_year-hint")
    expect(hint).to_contain_text(f"accepted 0{DASH}99 or 1900{DASH}2099")


def test_a_model_year_between_the_spellings_is_refused(page: Page) -> None:
    open_panel(page, "mpg")
    page.fill("#mpg-model_year", "176")
    page.click("#mpg-predict")
    message = page.eval_on_selector("#mpg-model_year", "input => input.validationMessage")
    assert f"0{DASH}99 or" in message
    expect(page.locator("#mpg-answer")).to_be_hidden()


def test_car_names_keep_their_abbreviations(page: Page) -> None:
    open_panel(page, "mpg")
    options = page.locator("#mpg-example option").all_text_contents()
    assert any(o.startswith("Datsun 510 (SW) (") for o in options), options
    assert any(o.startswith("Plymouth Fury III (") for o in options), options
    assert not any("(Sw)" in o or " Iii " in o or o.startswith("Amc ") for o in options)


def test_values_outside_the_accepted_range_are_refused_before_sending(page: Page) -> None:
    open_panel(page, "mpg")
    page.fill("#mpg-cylinders", "40")  # over the accepted range: the browser itself objects
    page.click("#mpg-predict")
    assert page.eval_on_selector("#mpg-cylinders", "input => !input.validity.valid")
    expect(page.locator("#mpg-answer")).to_be_hidden()
