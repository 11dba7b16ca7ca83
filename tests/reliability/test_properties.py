"""Property-based tests (hypothesis) of the two input validators people reach first.

Image preprocessing: any picture, whatever its size, mode, format, polarity or content, becomes
a 28x28 float32 tensor in 0..1 or raises an `ImageError` with a message; nothing else escapes.
Car validation: `/mpg` accepts exactly the cars its published schema describes, encodes them as
the model's features, and names the field of anything it refuses.
"""

from __future__ import annotations

import io
import math
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from service.app import create_app
from service.errors import InvalidInput
from service.http.bodies import parse_cars
from service.schemas.mpg import ORIGIN_SPELLINGS
from service.settings import Settings
from service.vision import ImageError, NoDigitFound, preprocess
from training.cars import CAR_FEATURES, FEATURE_NAMES, ORIGINS
from training.signatures import IMAGE_SIZE

PROPERTY_SETTINGS = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_mnist_tensor(tensor: np.ndarray) -> None:
    assert tensor.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert tensor.dtype == np.float32
    assert np.isfinite(tensor).all()
    assert tensor.min() >= 0.0 and tensor.max() <= 1.0
    assert tensor.max() > 0.0, "a result with no ink should have been NoDigitFound"


def preprocess_or_refuse(data: bytes) -> np.ndarray | None:
    """The tensor, or None when the upload is refused with a message (the only other outcome)."""
    try:
        tensor = preprocess(data)
    except ImageError as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        assert exc.status in (413, 415, 422)
        return None
    assert_mnist_tensor(tensor)
    return tensor


# -- images ---------------------------------------------------------------------------------

SIDES = st.one_of(st.integers(1, 64), st.integers(65, 300), st.sampled_from([1, 2, 3, 1500]))
FORMATS_BY_MODE = {
    "1": ["PNG", "GIF", "BMP", "TIFF"],
    "L": ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"],
    "P": ["PNG", "GIF", "BMP", "TIFF"],
    "RGB": ["PNG", "JPEG", "BMP", "WEBP", "TIFF"],
    "RGBA": ["PNG", "WEBP", "TIFF"],
    "LA": ["PNG", "TIFF"],
    "CMYK": ["JPEG", "TIFF"],
    "I;16": ["PNG", "TIFF"],
    "I": ["TIFF"],
    "F": ["TIFF"],
}


@st.composite
def pictures(draw: st.DrawFn) -> tuple[Image.Image, str]:
    """A picture of any size and mode holding noise, nothing, one pixel, or strokes."""
    width, height = draw(SIDES), draw(SIDES)
    assume(width * height <= 300_000)  # keeps each example to milliseconds
    content = draw(st.sampled_from(["strokes", "noise", "blank", "pixel"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    background, ink = draw(st.sampled_from([(255, 0), (0, 255), (200, 90), (128, 128)]))
    grey = np.full((height, width), background, dtype=np.uint8)
    if content == "noise":
        grey = rng.integers(0, 256, (height, width), dtype=np.uint8)
    elif content == "pixel":
        grey[rng.integers(height), rng.integers(width)] = ink
    elif content == "strokes":
        image = Image.fromarray(grey)
        pen = ImageDraw.Draw(image)
        for _ in range(draw(st.integers(1, 4))):
            points = [(int(rng.integers(width)), int(rng.integers(height))) for _ in range(3)]
            pen.line(points, fill=ink, width=max(1, min(width, height) // 12))
        grey = np.asarray(image)
    mode = draw(st.sampled_from(sorted(FORMATS_BY_MODE)))
    base = Image.fromarray(grey, mode="L")
    if mode == "I;16":
        picture = Image.fromarray(grey.astype(np.uint16) * 257)
    elif mode == "LA" or mode == "RGBA":
        alpha = rng.integers(0, 256, (height, width), dtype=np.uint8)
        picture = base.convert(mode)
        picture.putalpha(Image.fromarray(alpha, mode="L"))
    else:
        picture = base.convert(mode)
    return picture, draw(st.sampled_from(FORMATS_BY_MODE[mode]))


def encode(picture: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return buffer.getvalue()


@PROPERTY_SETTINGS
@given(pictures())
def test_any_picture_becomes_an_mnist_tensor_or_a_clear_refusal(
    case: tuple[Image.Image, str],
) -> None:
    picture, fmt = case
    preprocess_or_refuse(encode(picture, fmt))


@PROPERTY_SETTINGS
@given(pictures(), st.integers(0, 10_000), st.binary(max_size=64))
def test_damaged_files_are_refused_not_crashed_on(
    case: tuple[Image.Image, str], cut: int, garbage: bytes
) -> None:
    data = encode(*case)
    preprocess_or_refuse(data[: cut % max(1, len(data))] + garbage)


@PROPERTY_SETTINGS
@given(
    st.integers(20, 300),
    st.integers(20, 300),
    st.lists(st.tuples(st.floats(0.2, 0.8), st.floats(0.2, 0.8)), min_size=2, max_size=5),
)
def test_polarity_does_not_change_the_result(width: int, height: int, points: list) -> None:
    """Dark ink on light paper and light ink on dark paper give the same tensor."""
    image = Image.new("L", (width, height), 255)
    scaled = [(round(x * width), round(y * height)) for x, y in points]
    ImageDraw.Draw(image).line(scaled, fill=0, width=max(2, min(width, height) // 10))
    dark_on_light = preprocess_or_refuse(encode(image, "PNG"))
    light_on_dark = preprocess_or_refuse(encode(Image.eval(image, lambda v: 255 - v), "PNG"))
    assert (dark_on_light is None) == (light_on_dark is None)
    if dark_on_light is not None and light_on_dark is not None:
        # Rounding may place the digit one pixel apart (its centre of mass sits on a half).
        assert same_up_to_a_pixel(dark_on_light, light_on_dark)


def same_up_to_a_pixel(a: np.ndarray, b: np.ndarray, atol: float = 0.02) -> bool:
    padded = np.pad(b, 1)
    return any(
        np.abs(a - padded[1 + dy : 1 + dy + a.shape[0], 1 + dx : 1 + dx + a.shape[1]]).max() <= atol
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


@PROPERTY_SETTINGS
@given(
    st.integers(1, 3000),
    st.integers(1, 3000),
    st.sampled_from(["bar", "blank", "dot"]),
    st.booleans(),
)
def test_extreme_aspect_ratios(width: int, height: int, content: str, inverted: bool) -> None:
    assume(width * height <= 600_000 and max(width, height) >= 20 * min(width, height))
    page = np.zeros((height, width), dtype=np.uint8)
    if content == "bar":
        page[height // 4 : max(height // 4 + 1, 3 * height // 4), :] = 255
        page[:, width // 4 : max(width // 4 + 1, 3 * width // 4)] = 255
    elif content == "dot":
        page[height // 2, width // 2] = 255
    if inverted:
        page = 255 - page
    preprocess_or_refuse(encode(Image.fromarray(page, mode="L"), "PNG"))


@PROPERTY_SETTINGS
@given(
    st.integers(0, 40).flatmap(
        lambda rows: st.integers(0, 40).flatmap(
            lambda cols: st.lists(
                st.lists(
                    st.floats(allow_nan=True, allow_infinity=True, width=32),
                    min_size=cols,
                    max_size=cols,
                ),
                min_size=rows,
                max_size=rows,
            )
        )
    )
)
def test_any_pixel_array_becomes_a_tensor_or_a_clear_refusal(rows: list[list[float]]) -> None:
    pixels = np.asarray(rows, dtype=np.float32)
    try:
        tensor = preprocess(pixels)
    except ImageError as exc:
        assert str(exc)
        finite = pixels.size and np.isfinite(pixels).all()
        if finite and pixels.min() >= 0 and pixels.max() <= 255:
            assert isinstance(exc, NoDigitFound), exc  # valid values: only "no digit" is left
        return
    assert_mnist_tensor(tensor)


def test_a_single_pixel_image_is_no_digit() -> None:
    for mode, value in (("L", 0), ("L", 255), ("RGBA", (0, 0, 0, 255)), ("1", 1)):
        data = encode(Image.new(mode, (1, 1), value), "PNG")
        with pytest.raises(NoDigitFound, match="no digit"):
            preprocess(data)


# -- cars -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def car_schema() -> dict[str, Any]:
    """The Car schema exactly as the service publishes it in /openapi.json."""
    document = create_app(Settings(_env_file=None)).openapi()
    body = document["paths"]["/mpg"]["post"]["requestBody"]["content"]["application/json"]
    one_car: dict[str, Any] = body["schema"]["oneOf"][0]
    assert one_car["title"] == "Car"
    return one_car


def feature_values(name: str) -> st.SearchStrategy[Any]:
    """Values a documented car may hold for feature `name`."""
    feature = next(f for f in CAR_FEATURES if f.name == name)
    if name == "origin":
        return st.one_of(st.integers(1, len(ORIGINS)), st.sampled_from(ORIGIN_SPELLINGS))
    if name == "model_year":
        return st.one_of(st.integers(0, 99), st.integers(1900, 2099))
    if feature.integer:
        return st.integers(int(feature.minimum), int(feature.maximum))
    return st.floats(feature.minimum, feature.maximum)


VALID_CARS = st.fixed_dictionaries({name: feature_values(name) for name in FEATURE_NAMES})
NEAR_MISSES = st.sampled_from(
    ["4", "2", "٢", "70", "1976", "1e3", " japan", "japan ", "jApan", "JaPaN", "usa\n", "EU", ""]
)
"""Strings a lenient parser would take for a number or an origin."""
ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | NEAR_MISSES,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=5,
)


@st.composite
def mutated_cars(draw: st.DrawFn) -> dict[str, Any]:
    """A documented car with some features replaced by any JSON value, dropped, or joined by
    fields of other names."""
    car = dict(draw(VALID_CARS))
    # Mostly one change at a time: a second one usually hides the first from the parser.
    count = draw(st.sampled_from([0, 1, 1, 1, 1, 2, 3]))
    for name in draw(
        st.lists(st.sampled_from(FEATURE_NAMES), min_size=count, max_size=count, unique=True)
    ):
        action = draw(st.sampled_from(["replace", "replace", "drop"]))
        if action == "drop":
            del car[name]
        else:
            car[name] = draw(st.one_of(NEAR_MISSES, ANY_JSON))
    if count == 0:
        car[draw(st.text(min_size=1, max_size=10))] = draw(ANY_JSON)
    return car


@PROPERTY_SETTINGS
@given(car=VALID_CARS)
def test_every_documented_car_is_accepted_and_encoded_for_the_model(
    car: dict[str, Any], car_schema: dict[str, Any]
) -> None:
    jsonschema.validate(car, car_schema)
    (parsed,), batch = parse_cars(car, max_cars=10)
    assert not batch
    origin = car["origin"]
    expected_origin = origin if isinstance(origin, int) else ORIGINS.index(origin.lower()) + 1
    assert parsed.origin == expected_origin
    year = car["model_year"]
    assert parsed.model_year == (year - 1900 if year >= 1900 else year)
    for name in FEATURE_NAMES:
        value = getattr(parsed, name)
        assert isinstance(value, int | float) and math.isfinite(value)


@settings(PROPERTY_SETTINGS, max_examples=400)
@given(car=mutated_cars())
def test_a_car_is_accepted_exactly_when_its_schema_allows_it(
    car: dict[str, Any], car_schema: dict[str, Any]
) -> None:
    valid = jsonschema.Draft202012Validator(car_schema).is_valid(car)
    try:
        parse_cars(car, max_cars=10)
    except InvalidInput as exc:
        assert exc.details, exc.message
        assert not valid, f"a car the schema allows was refused: {exc.message}"
        named = {detail["field"].split(".")[0] for detail in exc.details}
        assert named & (set(car) | set(FEATURE_NAMES)), exc.details
        return
    assert valid, f"a car the schema forbids was accepted: {car!r}"


@PROPERTY_SETTINGS
@given(st.lists(VALID_CARS, min_size=1, max_size=5), st.integers(0, 4), ANY_JSON)
def test_one_bad_car_in_a_batch_is_named_by_its_position(
    cars: list[dict[str, Any]], index: int, value: Any
) -> None:
    index %= len(cars)
    cars[index] = {**cars[index], "weight": value}
    assume(
        not (
            isinstance(value, int | float) and not isinstance(value, bool) and 500 <= value <= 20000
        )
    )
    with pytest.raises(InvalidInput) as refused:
        parse_cars(cars, max_cars=10)
    assert refused.value.details
    assert refused.value.details[0]["field"].startswith(f"{index}.weight")
