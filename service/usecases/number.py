"""Reading written numbers: the request's images admitted and cut into digits, one model call
for every candidate digit of every image, and the reading per image.

Where touching digits can be cut several ways (`service.vision.segmentation`), the model reads
every way. The way shape makes likeliest stands when the model reads it surely (KEEP_SURE);
otherwise the way the model reads most surely (the highest product of its digits'
probabilities) is the reading. The model alone cannot judge: it reads the halves of a wide 0,
and many touching pairs as one digit, with confidence.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from service import vision
from service.admission import DigitSource, ImageAdmission
from service.metrics import ServiceMetrics
from service.registry import ModelRegistry
from service.schemas.number import NumberDigitReading, NumberReading
from service.usecases.digit import PROBABILITY_DECIMALS

KEEP_SURE = 0.99
"""The reading shape makes likeliest stands when the model gives it at least this probability
(the product of its digits'): chosen for the bundled digit model on the design seed of the
number corpus (`python -m bench numbers --seed 1`), where 0.99 and "always the surest way" tie
(918 and 919 of 1,000 numbers read; 0.9 reads 906). The shape's reading is kept where the
model is that sure, for pictures the corpus does not cover."""


async def read(
    sources: Sequence[DigitSource],
    admission: ImageAdmission,
    registry: ModelRegistry,
    metrics: ServiceMetrics,
    *,
    max_digits: int,
    endpoint: str,
) -> list[NumberReading]:
    """The number written in each of `sources`, in order."""
    started = time.perf_counter()
    numbers = await admission.preprocess_numbers(sources, max_digits)
    candidates = [
        digit
        for number in numbers
        for stretch in number
        for reading in stretch.readings
        for digit in reading
    ]
    model = registry.get("digit")
    outputs = await model.infer({"image": np.stack([digit.tensor for digit in candidates])})
    rows = iter(outputs["probabilities"])
    readings = []
    for number in numbers:
        digits: list[NumberDigitReading] = []
        for stretch in number:
            digits += likeliest(stretch, [[next(rows) for _ in way] for way in stretch.readings])
        for digit in digits:
            metrics.digit_classes.labels(str(digit.digit)).inc()
        readings.append(
            NumberReading(
                number="".join(str(digit.digit) for digit in digits),
                digits=digits,
                probability=round(
                    math.prod(digit.probability for digit in digits), PROBABILITY_DECIMALS
                ),
                model="digit",
                model_version=model.version,
            )
        )
    version = str(model.version)
    metrics.predictions.labels("digit", version).inc(len(candidates))
    metrics.prediction_latency.labels(endpoint, "digit", version).observe(
        time.perf_counter() - started
    )
    return readings


def likeliest(
    stretch: vision.NumberStretch, probabilities: list[list[np.ndarray]]
) -> list[NumberDigitReading]:
    """The digits of the way of reading a stretch that stands: the likeliest by shape when
    the model reads it surely, else the one the model reads most surely."""
    sureness = [math.prod(float(row.max()) for row in way) for way in probabilities]
    surest = 0 if sureness[0] >= KEEP_SURE else int(np.argmax(sureness))
    return [
        NumberDigitReading(
            digit=int(row.argmax()),
            probability=round(float(row.max()), PROBABILITY_DECIMALS),
            box=list(digit.box),
        )
        for digit, row in zip(stretch.readings[surest], probabilities[surest], strict=True)
    ]
