"""`python -m bench preprocess`: decode + preprocess time per upload, against baselines measured
in the same run (issue 11's speed budget: a 280x280 canvas PNG and a 4000x3000 phone photo).

Three implementations time the same files, each in its own subprocess, in alternating rounds
so that a noisy neighbour slows them alike:

* `now`: `service.imaging` of this checkout (decode, then `to_mnist_tensor`);
* `before`: `service.imaging` as it was at `--before REV` (default: the last commit before the
  issue 11 rewrite), extracted with `git archive` into a temporary folder;
* `decode`: Pillow opening and decoding the file alone (with the same reduced-size JPEG draft
  the service asks for): the floor no preprocessing can go under.

`--libraries` adds the comparison that chose OpenCV over Pillow + NumPy + SciPy: the costliest
operations of the ink separation (a wide grey closing, connected components with their boxes,
an area-averaging reduction) timed with each library on the same working-size pictures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BEFORE_REV = "e0a4509"
"""The last commit before issue 11 rewrote the preprocessing."""
ROUNDS = 3


def _images(count: int, seed: int) -> dict[str, list[bytes]]:
    from bench.payloads import DIGIT_INDEX
    from bench.uploads_corpus import mnist_test_digits, render, sample
    from tests import drawings

    digits, _ = mnist_test_digits()
    images = {
        "bench digit-canvas (280x280 PNG)": [drawings.transparent_canvas(digits[DIGIT_INDEX])]
    }
    for condition, name in (
        ("canvas", "corpus canvas (280x280 PNG)"),
        ("paper_jpeg", "corpus paper JPEG"),
        ("phone_photo", "corpus phone photo (4000x3000 JPEG)"),
    ):
        indices = sample(condition, len(digits), count, seed)
        images[name] = [render(condition, digits[i], int(i), seed) for i in indices]
    return images


_TIMER = r"""
import json, sys, time, io, statistics
sys.path.insert(0, sys.argv[1])
images = json.load(open(sys.argv[2]))
mode, repeats = sys.argv[3], int(sys.argv[4])
from PIL import Image
if mode == "decode":
    try:
        from service.vision.pipeline import JPEG_DRAFT_SIDE as SIDE
    except ImportError:  # a checkout from before service/vision/
        from service.imaging import JPEG_DRAFT_SIDE as SIDE
    def work(data):
        image = Image.open(io.BytesIO(data))
        if image.format == "JPEG":
            side = max(image.size)
            image.draft("L", (image.width * SIDE // side, image.height * SIDE // side))
        image.load()
else:
    try:
        from service.vision.pipeline import decode_image, to_mnist_tensor
    except ImportError:  # a checkout from before service/vision/
        from service.imaging import decode_image, to_mnist_tensor
    def work(data):
        to_mnist_tensor(decode_image(data, max_pixels=25_000_000))
out = {}
for name, files in images.items():
    blobs = [bytes.fromhex(f) for f in files]
    for blob in blobs:
        work(blob)
    samples = []
    for _ in range(repeats):
        for blob in blobs:
            start = time.perf_counter()
            work(blob)
            samples.append(time.perf_counter() - start)
    out[name] = samples
json.dump(out, sys.stdout)
"""


def _time(root: Path, mode: str, images_file: Path, repeats: int) -> dict[str, list[float]]:
    completed = subprocess.run(
        [sys.executable, "-c", _TIMER, str(root), str(images_file), mode, str(repeats)],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
    )
    result: dict[str, list[float]] = json.loads(completed.stdout)
    return result


def measure(repo: Path, before: str, count: int, seed: int, repeats: int) -> dict[str, Any]:
    images = _images(count, seed)
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        old = workdir / "before"
        old.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", before, "service", "training"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        images_file = workdir / "images.json"
        images_file.write_text(json.dumps({k: [b.hex() for b in v] for k, v in images.items()}))
        samples: dict[str, dict[str, list[float]]] = {"decode": {}, "before": {}, "now": {}}
        for _ in range(ROUNDS):
            for mode, root in (("decode", repo), ("before", old), ("now", repo)):
                timed = _time(
                    root, "decode" if mode == "decode" else "preprocess", images_file, repeats
                )
                for name, values in timed.items():
                    samples[mode].setdefault(name, []).extend(values)
    rows = []
    for name in images:
        medians = {mode: 1000 * statistics.median(samples[mode][name]) for mode in samples}
        rows.append({"image": name, "files": len(images[name]), **medians})
    return {"before": before, "rows": rows}


def library_comparison(count: int, seed: int, repeats: int) -> list[dict[str, Any]]:
    """Milliseconds per working-size picture for each costly operation, OpenCV vs SciPy/Pillow."""
    import cv2
    import numpy as np
    from PIL import Image
    from scipy import ndimage

    from bench.uploads_corpus import mnist_test_digits, render, sample
    from service.vision.pipeline import _greyscale, decode_image

    digits, _ = mnist_test_digits()
    greys = []
    for condition in ("paper_jpeg", "phone_photo"):
        for index in sample(condition, len(digits), count, seed):
            data = render(condition, digits[index], int(index), seed)
            greys.append(_greyscale(decode_image(data, max_pixels=25_000_000)))
    masks = [
        (cv2.adaptiveThreshold(g, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, 15))
        for g in greys
    ]

    def closing_cv(g: Any) -> None:
        side = round(min(g.shape) * 0.35) | 1
        cv2.morphologyEx(g, cv2.MORPH_CLOSE, np.ones((side, side), np.uint8))

    def closing_scipy(g: Any) -> None:
        side = round(min(g.shape) * 0.35) | 1
        ndimage.grey_closing(g, size=(side, side))

    def components_cv(m: Any) -> None:
        cv2.connectedComponentsWithStats(m, connectivity=8)

    def components_scipy(m: Any) -> None:
        labels, count_ = ndimage.label(m, structure=np.ones((3, 3)))
        ndimage.find_objects(labels)
        np.bincount(labels.ravel(), minlength=count_ + 1)

    def reduce_cv(g: Any) -> None:
        cv2.resize(g, (g.shape[1] // 2, g.shape[0] // 2), interpolation=cv2.INTER_AREA)

    def reduce_pillow(g: Any) -> None:
        np.asarray(Image.fromarray(g).reduce(2))

    rows = []
    for operation, inputs, opencv, other, other_name in (
        ("grey closing, window 35% of the side", greys, closing_cv, closing_scipy, "scipy.ndimage"),
        (
            "connected components + boxes + areas",
            masks,
            components_cv,
            components_scipy,
            "scipy.ndimage",
        ),
        ("area reduction to half size", greys, reduce_cv, reduce_pillow, "Pillow"),
    ):
        timings = {}
        for name, function in (("opencv", opencv), ("alternative", other)):
            samples = []
            for _ in range(repeats):
                for item in inputs:
                    start = time.perf_counter()
                    function(item)
                    samples.append(time.perf_counter() - start)
            timings[name] = 1000 * statistics.median(samples)
        rows.append({"operation": operation, "library": other_name, **timings})
    return rows


def render_markdown(
    result: dict[str, Any], libraries: list[dict[str, Any]] | None, command: str
) -> str:
    lines = [
        f"`{command}`",
        "",
        "Median milliseconds to decode and preprocess one upload (ratios against the same run):",
        "",
        "| upload | files | decode only | before | now | now / before | now - decode |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['image']} | {row['files']} | {row['decode']:.2f} | {row['before']:.2f} | "
            f"{row['now']:.2f} | {row['now'] / row['before']:.2f} | "
            f"{row['now'] - row['decode']:.2f} |"
        )
    lines += ["", f"`before` is `service.imaging` at {result['before']}."]
    if libraries:
        lines += [
            "",
            "The same operations with each library, median ms per working-size picture:",
            "",
            "| operation | OpenCV | alternative | alternative library | alternative / OpenCV |",
            "|---|---:|---:|---|---:|",
        ]
        for row in libraries:
            lines.append(
                f"| {row['operation']} | {row['opencv']:.3f} | {row['alternative']:.3f} | "
                f"{row['library']} | {row['alternative'] / row['opencv']:.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str], *, results_file: Path, repo: Path) -> int:
    from bench.report import replace_section

    parser = argparse.ArgumentParser(prog="python -m bench preprocess", description=__doc__)
    parser.add_argument("--count", type=int, default=10, help="files per corpus condition (10)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20, help="timings of each file per round")
    parser.add_argument("--before", default=BEFORE_REV, help=f"baseline revision ({BEFORE_REV})")
    parser.add_argument(
        "--libraries", action="store_true", help="also compare OpenCV with SciPy/Pillow"
    )
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    options = parser.parse_args(argv)
    command = " ".join(["python -m bench preprocess", *argv])
    result = measure(repo, options.before, options.count, options.seed, options.repeats)
    libraries = library_comparison(options.count, options.seed, 3) if options.libraries else None
    markdown = render_markdown(result, libraries, command)
    print(markdown)
    if options.write_results:
        replace_section(results_file, "preprocess", markdown)
        print(f"\nwritten to {results_file}")
    return 0
