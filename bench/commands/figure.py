"""Draws docs/preprocessing.png, the README's figure of each preprocessing step.

Renders a digit written in blue ballpoint on ruled paper, lit from one side, with a phone's
shadow across it, a few specks of dust and sensor noise, saved as a JPEG (built from the upload
corpus's materials, `bench.ink_and_paper`), runs it through the service's own preprocessing
with `vision.preprocess(..., steps=steps)`, and writes one tile per step. Publishes no section.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench import REPO, paper_scenes
from bench import ink_and_paper as ip
from bench.results import Section

TILE = 220
LABELS = (
    "1. the upload (JPEG)",
    "2. grey, working size",
    "3. ink vs local paper",
    "4. own threshold",
    "5. paper lines out",
    "6. digit kept, red dropped",
    "7. what the model sees",
)


def photo_like_upload(digit: np.ndarray, seed: int = 4) -> bytes:
    """Blue pen on ruled paper under uneven light, a shadow, specks and noise, as a JPEG."""
    rng = np.random.default_rng(seed)
    page, box = paper_scenes.paper_scene(
        digit, rng, longest=(240, 240), level=(235, 245), ink=(30.0, 50.0, 150.0)
    )
    height, width = page.shape[:2]
    lines = ip.ruling(height, width, rng, spacing=90.0, thickness=2.5, vertical=False)
    ip.apply_ink(page, lines, 0, 0, (80.0, 115.0, 205.0))
    ip.darken(page, 0.35 * (1.0 - ip.light_gradient(height, width, rng, low=0.55)))
    ip.darken(page, 0.3 * paper_scenes.shadow_field(page.shape[:2], box, rng))
    for _ in range(12):
        y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
        page[y : y + 4, x : x + 4] *= 0.3
    ip.add_noise(page, 4.0, rng)
    return ip.encode(ip.to_image(page, "RGB"), "JPEG", quality=85)


def _tile(picture: np.ndarray | Image.Image, label: str) -> Image.Image:
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    image = image.convert("RGB")
    scale = TILE / max(image.size)
    resample = Image.Resampling.NEAREST if max(image.size) <= 64 else Image.Resampling.LANCZOS
    image = image.resize((round(image.width * scale), round(image.height * scale)), resample)
    tile = Image.new("RGB", (TILE, TILE + 24), "white")
    tile.paste(image, ((TILE - image.width) // 2, (TILE - image.height) // 2))
    ImageDraw.Draw(tile).text((4, TILE + 6), label, fill="black")
    return tile


def _digit_over_dropped(steps: dict[str, np.ndarray]) -> np.ndarray:
    """The kept pieces in white, everything the threshold found but dropped in red."""
    shown = np.zeros((*steps["digit"].shape, 3), dtype=np.uint8)
    shown[steps["threshold"] > 0] = (200, 40, 40)
    shown[steps["digit"] > 0] = (255, 255, 255)
    return shown


def render_figure(digit: np.ndarray, output: Path) -> None:
    from service import vision

    data = photo_like_upload(digit)
    upload = Image.open(io.BytesIO(data))
    steps: dict[str, np.ndarray] = {}
    tensor = vision.preprocess(data, steps=steps)
    pictures = (
        upload,
        steps["grey"],
        255 - steps["ink"],
        steps["threshold"] * 255,
        steps["without_lines"] * 255,
        _digit_over_dropped(steps),
        np.uint8(np.rint(tensor * 255)),
    )
    tiles = [_tile(picture, label) for picture, label in zip(pictures, LABELS, strict=True)]
    figure = Image.new("RGB", (TILE * len(tiles) + 8 * (len(tiles) - 1), TILE + 24), "white")
    for index, tile in enumerate(tiles):
        figure.paste(tile, (index * (TILE + 8), 0))
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.save(output, optimize=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--test-index", type=int, default=15, help="MNIST test digit (15: a 5)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "preprocessing.png")


def run(args: argparse.Namespace) -> list[Section]:
    from bench.uploads_corpus import mnist_test_digits

    digits, _ = mnist_test_digits()
    render_figure(digits[args.test_index], args.output)
    print(f"written to {args.output}")
    return []
