"""What a car is to the MPG model: its features, their units and plausible values, its origins.

Everything that reads, validates or displays car features (training, the service's schemas, the
web page through /mpg/features, the tests) takes them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

ORIGINS: tuple[str, ...] = ("usa", "europe", "japan")
"""Origin names in the order of the data set's codes: 1 = USA, 2 = Europe, 3 = Japan."""

TARGET = "mpg"

LITRES_PER_100KM_FACTOR = 235.214583
"""100 km / (1 US gallon in litres) scaled: litres/100 km = 235.214583 / mpg."""


MODEL_YEAR_CENTURY = 1900
"""The data set writes model years as years since 1900 (70 = 1970)."""
MODEL_YEAR_SHORT: tuple[float, float] = (0, 99)
"""Model years as the data set writes them: 76 is 1976."""
MODEL_YEAR_FULL: tuple[float, float] = (MODEL_YEAR_CENTURY, MODEL_YEAR_CENTURY + 199)
"""Model years in full, 1900-2099: the encoding's 0-199."""


@dataclass(frozen=True)
class CarFeature:
    """One model input. `minimum`/`maximum` bound physically plausible values: anything outside
    is a user error (422). The narrower range seen in training is recorded per model version."""

    name: str
    label: str
    unit: str
    minimum: float
    maximum: float
    integer: bool = False
    description: str = ""
    accepted: tuple[tuple[float, float], ...] = ()
    """What a request may give when it differs from [minimum, maximum] (the model's encoding),
    converted to the encoding on input (model_year: `model_year_offset`). Empty: the same."""

    def accepted_ranges(self) -> tuple[tuple[float, float], ...]:
        """The inclusive ranges of values a request may give for this feature."""
        return self.accepted or ((self.minimum, self.maximum),)


CAR_FEATURES: tuple[CarFeature, ...] = (
    CarFeature("cylinders", "Cylinders", "", 2, 16, integer=True, description="Engine cylinders"),
    CarFeature(
        "displacement", "Displacement", "cubic inches", 10, 1000, description="Engine displacement"
    ),
    CarFeature("horsepower", "Horsepower", "hp", 10, 2000, description="Engine power"),
    CarFeature("weight", "Weight", "lbs", 500, 20000, description="Vehicle weight"),
    CarFeature(
        "acceleration",
        "Acceleration",
        "seconds 0-60 mph",
        1,
        60,
        description="Time from 0 to 60 mph",
    ),
    CarFeature(
        "model_year",
        "Model year",
        "years since 1900",
        0,
        199,
        integer=True,
        description="Model year as in the data set (76 = 1976) or in full (1976)",
        accepted=(MODEL_YEAR_SHORT, MODEL_YEAR_FULL),
    ),
    CarFeature(
        "origin",
        "Origin",
        "1 = USA, 2 = Europe, 3 = Japan",
        1,
        3,
        integer=True,
        description="Region of manufacture",
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in CAR_FEATURES)

EXAMPLE_CAR: dict[str, int | float] = {
    "cylinders": 4,
    "displacement": 97.0,
    "horsepower": 88.0,
    "weight": 2130.0,
    "acceleration": 14.5,
    "model_year": 71,
    "origin": 3,
}
"""A real car of the data set (the 1971 Datsun PL510, 27 mpg), in its own encoding: the
example of every API and test that needs one."""
FEATURES_BY_NAME: dict[str, CarFeature] = {f.name: f for f in CAR_FEATURES}

DATA_FILE_COLUMNS: tuple[str, ...] = (TARGET, *FEATURE_NAMES)
"""Columns of the UCI `auto-mpg.data` file, in file order (the car name follows a tab)."""


def origin_code(origin: str | int) -> int:
    """Returns the data set's origin code (1-3) for a name or code; raises ValueError otherwise."""
    if isinstance(origin, str):
        key = origin.strip().lower()
        if key in ORIGINS:
            return ORIGINS.index(key) + 1
        if key.isdigit():
            origin = int(key)
        else:
            raise ValueError(f"unknown origin {origin!r}: use one of {', '.join(ORIGINS)} or 1-3")
    if isinstance(origin, int) and 1 <= origin <= len(ORIGINS):
        return origin
    raise ValueError(f"unknown origin {origin!r}: use one of {', '.join(ORIGINS)} or 1-3")


def model_year_offset(year: int) -> int:
    """Returns the data set's year encoding (years since 1900) for 70-style or 1970-style years."""
    return year - MODEL_YEAR_CENTURY if year >= MODEL_YEAR_CENTURY else year


RANGE_DASH = "\u2013"
"""The en dash between a range's ends, as the web page's form writes ranges too."""


def training_range_text(name: str, low: float, high: float) -> str:
    """A range of a feature's values in the model's encoding as people read it, the way the web
    page's form writes it too: "46", en dash, "225 hp"; model years in full (1970 to 1982)."""
    if name == "model_year":
        return f"{MODEL_YEAR_CENTURY + low:g}{RANGE_DASH}{MODEL_YEAR_CENTURY + high:g}"
    unit = FEATURES_BY_NAME[name].unit
    suffix = f" {unit}" if unit and name != "origin" else ""
    return f"{low:g}{RANGE_DASH}{high:g}{suffix}"


def value_text(name: str, value: float) -> str:
    """One value of a feature in the model's encoding as people read it: "400 hp", "1990"."""
    if name == "model_year":
        return f"{MODEL_YEAR_CENTURY + value:g}"
    unit = FEATURES_BY_NAME[name].unit
    return f"{value:g} {unit}" if unit and name != "origin" else f"{value:g}"


def litres_per_100km(mpg: float) -> float:
    """Converts US miles per gallon to litres per 100 km."""
    return LITRES_PER_100KM_FACTOR / mpg
