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


def test_on_a_phone_predict_brings_the_answer_into_view(phone_page: Page) -> None:
    """The form fills a phone's screen and the answer appears under it: Predict must show it."""
    page = phone_page
    open_panel(page, "mpg")
    page.click("#mpg-predict")
    headline = page.locator("#mpg-answer .headline")
    expect(headline).to_be_visible()
    expect(headline).to_be_in_viewport(ratio=1.0)
    # Fully in view, not merely touching the bottom edge.
    top, bottom, height = page.evaluate(
        "() => { const r = document.querySelector('#mpg-answer .headline')"
        ".getBoundingClientRect(); return [r.top, r.bottom, innerHeight]; }"
    )
    assert top >= 0 and bottom <= height, (top, bottom, height)
    screenshot(page, "phone-mpg-answer")


def test_warnings_write_the_training_range_as_the_form_does(page: Page) -> None:
    open_panel(page, "mpg")
    page.fill("#mpg-horsepower", "400")
    page.click("#mpg-predict")
    hint = page.locator("#mpg-horsepower-hint").text_content() or ""
    trained = hint.split("trained on ", 1)[1]
    assert trained.endswith(" hp") and DASH in trained, hint
    expect(page.locator("#mpg-warnings")).to_contain_text(
        f"horsepower 400 hp is outside the range the model was trained on, {trained};"
    )


def test_fields_of_a_row_line_up_when_a_label_wraps(page: Page, phone_page: Page) -> None:
    """ "Acceleration (seconds 0-60 mph)" takes two lines where its neighbours take one: their
    inputs stay level all the same."""
    for each in (page, phone_page):
        open_panel(each, "mpg")
        fields = each.evaluate(
            """() => [...document.querySelectorAll('#mpg-fields .field')].map((field) => {
                 const label = field.querySelector('label').getBoundingClientRect();
                 const control = field.querySelector('input, select').getBoundingClientRect();
                 return { top: Math.round(field.getBoundingClientRect().top),
                          label: Math.round(label.height), control: Math.round(control.top) };
               })"""
        )
        rows: dict[int, list[dict[str, int]]] = {}
        for field in fields:
            rows.setdefault(field["top"], []).append(field)
        if each is phone_page:  # narrow columns: some label does wrap there
            assert any(len({f["label"] for f in row}) > 1 for row in rows.values()), fields
        for row in rows.values():
            assert len({f["control"] for f in row}) == 1, row
