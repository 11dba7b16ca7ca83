"""POST /mpg: real cars from the data set, units, warnings and batches."""

from __future__ import annotations

import json

import pytest

from service.routes.mpg import EXAMPLE_CARS_FILE
from tests.service.test_bad_input import GOOD_CAR
from training.cars import FEATURE_NAMES, ORIGINS, RANGE_DASH, litres_per_100km
from training.data import standard_split


def car_of(row) -> dict:
    car = {name: float(row[name]) for name in FEATURE_NAMES}
    car["cylinders"] = int(row["cylinders"])
    car["model_year"] = int(row["model_year"])
    car["origin"] = ORIGINS[int(row["origin"]) - 1]
    return car


@pytest.mark.data
def test_known_cars_get_a_sensible_mpg(bundled_client, auto_mpg) -> None:
    _, test = standard_split(auto_mpg)
    cars = [car_of(row) for _, row in test.iterrows()]
    response = bundled_client.post("/mpg", json=cars)
    assert response.status_code == 200, response.text
    predicted = [r["mpg"] for r in response.json()["results"]]
    errors = [abs(p - t) for p, t in zip(predicted, test["mpg"], strict=True)]
    assert sum(errors) / len(errors) <= 1.7
    assert max(errors) < 10


def test_one_car(client) -> None:
    body = client.post("/mpg", json=GOOD_CAR).json()
    assert set(body) == {"mpg", "litres_per_100km", "model", "model_version", "warnings"}
    assert 5 < body["mpg"] < 60
    assert body["litres_per_100km"] == pytest.approx(litres_per_100km(body["mpg"]), abs=0.02)
    assert body["model"] == "mpg" and body["model_version"] == 1 and body["warnings"] == []


def test_origin_and_year_spellings_agree(client) -> None:
    spellings = [
        {"origin": "japan", "model_year": 71},
        {"origin": "Japan", "model_year": 1971},
        {"origin": 3, "model_year": 71},
        {"origin": "JAPAN", "model_year": 1971},
    ]
    answers = {client.post("/mpg", json={**GOOD_CAR, **s}).json()["mpg"] for s in spellings}
    assert len(answers) == 1


def test_a_whole_number_written_with_a_point_is_an_integer(client) -> None:
    # JSON Schema's "integer" allows 4.0, and clients that write every number as a float do.
    exact = client.post("/mpg", json={**GOOD_CAR, "cylinders": 4}).json()["mpg"]
    assert client.post("/mpg", json={**GOOD_CAR, "cylinders": 4.0}).json()["mpg"] == exact
    for refused in (4.5, "4", True):
        answer = client.post("/mpg", json={**GOOD_CAR, "cylinders": refused})
        assert answer.status_code == 422, refused
        assert "cylinders" in answer.text


def test_a_batch_answers_in_order(client) -> None:
    cars = [{**GOOD_CAR, "weight": 1800.0 + 200 * i} for i in range(10)]
    results = client.post("/mpg", json=cars).json()["results"]
    singles = [client.post("/mpg", json=car).json()["mpg"] for car in cars]
    assert [r["mpg"] for r in results] == pytest.approx(singles, abs=0.011)


def test_values_outside_training_are_accepted_with_a_warning(client) -> None:
    body = client.post("/mpg", json={**GOOD_CAR, "weight": 9000.0, "model_year": 2020}).json()
    warnings = " ".join(body["warnings"])
    assert "weight 9000 lbs is outside the range the model was trained on, " in warnings
    assert "model_year 2020 is outside the range the model was trained on, " in warnings
    assert body["mpg"] >= 1.0


def test_the_features_description(client) -> None:
    body = client.get("/mpg/features").json()
    assert [f["name"] for f in body["features"]] == list(FEATURE_NAMES)
    weight = next(f for f in body["features"] if f["name"] == "weight")
    assert (
        weight["unit"] == "lbs" and weight["training_range"][0] < 2000 < weight["training_range"][1]
    )
    assert body["origins"] == list(ORIGINS)
    assert len(body["examples"]) >= 20 and all("name" in car for car in body["examples"])


def test_accepted_ranges_are_the_schemas(client) -> None:
    """The web form takes its limits from /mpg/features: they must be what /mpg validates."""
    features = {f["name"]: f for f in client.get("/mpg/features").json()["features"]}
    body = client.get("/openapi.json").json()["paths"]["/mpg"]["post"]["requestBody"]
    car_schema = body["content"]["application/json"]["schema"]["oneOf"][0]
    for name, feature in features.items():
        schema = car_schema["properties"][name]
        options = [o for o in schema.get("anyOf", [schema]) if o.get("type") != "string"]
        assert [[o["minimum"], o["maximum"]] for o in options] == feature["accepted_ranges"], name
    assert features["model_year"]["accepted_ranges"] == [[0, 99], [1900, 2099]]
    for year, status in ((76, 200), (1976, 200), (99, 200), (1900, 200), (2099, 200)):
        assert client.post("/mpg", json={**GOOD_CAR, "model_year": year}).status_code == status
    for year in (-1, 100, 199, 1899, 2100):
        response = client.post("/mpg", json={**GOOD_CAR, "model_year": year})
        assert response.status_code == 422, year
        assert "0-99 (years since 1900, as in the data set) or 1900-2099" in response.text


def test_minimum_and_maximum_advertise_only_accepted_values(client) -> None:
    """A client that reads only minimum and maximum builds a form /mpg never refuses."""
    for feature in client.get("/mpg/features").json()["features"]:
        low, high = feature["minimum"], feature["maximum"]
        assert [low, high] == feature["accepted_ranges"][0], feature["name"]
        if feature["name"] == "origin":
            continue
        for value in (low, high, (low + high) / 2):
            value = int(value) if feature["integer"] else value
            answer = client.post("/mpg", json={**GOOD_CAR, feature["name"]: value})
            assert answer.status_code == 200, (feature["name"], value, answer.text)
    year = next(
        f for f in client.get("/mpg/features").json()["features"] if f["name"] == "model_year"
    )
    assert (year["minimum"], year["maximum"]) == (0, 99)  # the data set's spelling, as examples


def test_warnings_write_ranges_as_the_form_does(client) -> None:
    body = client.post("/mpg", json={**GOOD_CAR, "horsepower": 400.0, "model_year": 1990}).json()
    features = {f["name"]: f for f in client.get("/mpg/features").json()["features"]}
    low, high = features["horsepower"]["training_range"]
    assert (
        "horsepower 400 hp is outside the range the model was trained on, "
        f"{low:g}{RANGE_DASH}{high:g} hp; the prediction is an extrapolation"
    ) in body["warnings"]
    first, last = features["model_year"]["training_range"]
    assert any(f"{1900 + first:g}{RANGE_DASH}{1900 + last:g}" in w for w in body["warnings"])


@pytest.mark.data
def test_example_cars_are_real_rows_of_the_data_set(auto_mpg) -> None:
    rows = {
        tuple(float(row[c]) for c in ("mpg", *FEATURE_NAMES[:-1])) for _, row in auto_mpg.iterrows()
    }
    for car in json.loads(EXAMPLE_CARS_FILE.read_text()):
        key = (car["mpg"], *(float(car[c]) for c in FEATURE_NAMES[:-1]))
        assert key in rows, car["name"]
