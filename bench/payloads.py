"""The request bodies every server is measured with, written once to files the load tools send.

* `digit-canvas`: one MNIST test digit as a web canvas exports it (280x280, black strokes on
  transparency), in a multipart upload; what the web page sends.
* `digit-mnist`: the same digit as MNIST stores it (28x28 greyscale PNG), in a multipart upload.
* `digit-batch64`: 64 different test digits as canvas PNGs, one multipart request.
* `mpg-one`: one car as JSON; `mpg-batch100`: 100 real cars from the data set, as a JSON list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import REPO
from tests import drawings  # the uploads people send, as the test suite draws them

BOUNDARY = "perceptron-bench-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
EXAMPLE_CARS = REPO / "service" / "example_cars.json"
BATCH_IMAGES = 64
BATCH_CARS = 100
DIGIT_INDEX = 0
"""MNIST test digit 0 (a 7), the image of the single-upload scenarios."""


@dataclass(frozen=True)
class Payload:
    name: str
    endpoint: str
    path: Path
    content_type: str
    items: int
    """Images or cars in one request."""
    image: bytes | None = None
    """For single-image payloads: the image file, for the in-process preprocessing timing."""


def multipart(files: list[tuple[str, bytes]], field: str = "file") -> bytes:
    parts = []
    for filename, data in files:
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _mnist_test_digits(count: int) -> np.ndarray:
    from service.settings import Settings
    from training import data

    settings = Settings()
    path = data.locate(
        data.MNIST_FILE, settings.data_dir, settings.cache_dir, download=settings.download_data
    )
    return data.load_mnist(path).x_test[:count]


def _cars(count: int) -> list[dict[str, object]]:
    examples = json.loads(EXAMPLE_CARS.read_text(encoding="utf-8"))
    cars = [{k: v for k, v in car.items() if k not in ("name", "mpg")} for car in examples]
    return [cars[i % len(cars)] for i in range(count)]


def build(folder: Path) -> dict[str, Payload]:
    """Writes the bodies under `folder` and describes them, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    digits = _mnist_test_digits(BATCH_IMAGES)
    canvas = drawings.transparent_canvas(digits[DIGIT_INDEX])
    raw = drawings.mnist_png(digits[DIGIT_INDEX])
    batch = [(f"digit-{i}.png", drawings.transparent_canvas(d)) for i, d in enumerate(digits)]
    cars = _cars(BATCH_CARS)
    bodies: list[tuple[str, str, bytes, str, int, bytes | None]] = [
        ("digit-canvas", "/digit", multipart([("canvas.png", canvas)]), MULTIPART, 1, canvas),
        ("digit-mnist", "/digit", multipart([("mnist.png", raw)]), MULTIPART, 1, raw),
        ("digit-batch64", "/digit", multipart(batch), MULTIPART, BATCH_IMAGES, None),
        ("mpg-one", "/mpg", json.dumps(cars[0]).encode(), "application/json", 1, None),
        ("mpg-batch100", "/mpg", json.dumps(cars).encode(), "application/json", BATCH_CARS, None),
    ]
    payloads = {}
    for name, endpoint, body, content_type, items, image in bodies:
        path = folder / f"{name}.body"
        path.write_bytes(body)
        payloads[name] = Payload(name, endpoint, path, content_type, items, image)
    return payloads
