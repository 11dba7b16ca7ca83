"""How well the service reads written numbers (/number), and what /digit answers to them.

Renders `--count` numbers per layout and condition of `bench.numbers_corpus` (2-6 MNIST test
digits: spaced, close, touching pairs, mixed sizes, slanted; on a canvas and on paper under the
upload conditions), reads each as /number does (the service's own cutting into digits, the
served digit model in process) and as /digit does, and reports whole-number accuracy, digit
accuracy (1 - edit distance / digits), and how many /digit answered with one digit, flagged
as unsure (the model's doubt, or a picture that may hold several digits) and unflagged with
p >= 0.9 (confident). Then passes MNIST's 10,000 test arrays through /digit's preprocessing and
counts those taken for several digits (refused) or for maybe several (flagged). Last, unless
`--no-latency`, starts the service and measures /digit on a one-digit canvas and /number on a
three-digit canvas at concurrency 1 with wrk, in the same run.

Targets: separated numbers (spaced, mixed, slanted) of 2-4 digits >= 97% whole-number, touching
pairs reported (aim 85%), digits >= 99%, /digit 0 confident answers, /number's p50 at most 3x
/digit's. The segmentation's parameters were chosen on seed 1; report on another seed.
Writes the `numbers` section, and numbers.json to the run's folder.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import options
from bench.results import Section, table

SEPARATED = ("spaced", "mixed", "slanted")
LATENCY_DIGITS = (0, 1, 2)
"""MNIST test digits of the three-digit canvas /number is timed on (7, 2, 1)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.numbers_corpus import CONDITIONS, LAYOUTS

    options.models_dir(parser)
    options.load(parser, seconds=10, warmup=3, concurrency=(1,))
    parser.add_argument(
        "--count", type=int, default=20, help="numbers per layout and condition (20)"
    )
    parser.add_argument("--seed", type=int, default=2, help="corpus seed (default 2, held out)")
    parser.add_argument(
        "--layouts", type=options.csv, default=LAYOUTS, help=f"default {','.join(LAYOUTS)}"
    )
    parser.add_argument(
        "--conditions",
        type=options.csv,
        default=tuple(CONDITIONS),
        help=f"default {','.join(CONDITIONS)}",
    )
    parser.add_argument(
        "--mnist",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count MNIST test arrays /digit takes for several digits (default on)",
    )
    parser.add_argument(
        "--latency",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time /number against /digit on a running service (default on)",
    )


def run(args: argparse.Namespace) -> list[Section]:
    from bench.number_scoring import NumberScore, score
    from bench.numbers_corpus import make
    from bench.upload_scoring import DigitModel
    from bench.uploads_corpus import mnist_test_digits
    from service.settings import Settings

    if args.count < 1:
        raise SystemExit("--count must be at least 1")
    digits, labels = mnist_test_digits()
    model = DigitModel(args.models_dir)
    max_digits = Settings().max_number_digits
    by_layout: dict[str, NumberScore] = defaultdict(NumberScore)
    by_condition: dict[str, NumberScore] = defaultdict(NumberScore)
    by_length: dict[str, NumberScore] = defaultdict(NumberScore)
    for layout in args.layouts:
        for condition in args.conditions:
            for item in range(args.count):
                number = make(layout, condition, item, args.seed, digits, labels)
                result = score([number], model, max_digits)
                by_layout[layout].add(result)
                by_condition[condition].add(result)
                if layout in SEPARATED:
                    length = len(number.text)
                    by_length["2-4" if length <= 4 else "5-6"].add(result)
                    by_length[str(length)].add(result)
            print(f"{layout}/{condition}: {by_layout[layout].accuracy:.1%} so far", flush=True)
    several = _mnist_taken_for_several(digits) if args.mnist else None
    latency = _latency(args) if args.latency else None
    report = {
        "meta": {"model_version": model.version, "seed": args.seed, "count": args.count},
        "layouts": {name: _row(s) for name, s in by_layout.items()},
        "conditions": {name: _row(s) for name, s in by_condition.items()},
        "separated_lengths": {name: _row(s) for name, s in by_length.items()},
        "mnist_several_digits": several,
        "latency": latency,
    }
    (args.run_dir / "numbers.json").write_text(json.dumps(report, indent=2))
    return [Section("numbers", render(report))]


def _row(result: Any) -> dict[str, Any]:
    return {
        "numbers": result.numbers,
        "accuracy": result.accuracy,
        "digit_accuracy": result.digit_accuracy,
        "digit_answers": result.digit_answers,
        "digit_flagged": result.digit_flagged,
        "digit_confident": result.digit_confident,
        "refusals": dict(result.refusals),
    }


def _mnist_taken_for_several(digits: Any) -> dict[str, int]:
    """How many of MNIST's test arrays /digit's preprocessing refuses as several digits, and
    how many it takes for maybe several (answers flagged)."""
    import numpy as np

    from service import vision

    taken = {"refused": 0, "flagged": 0}
    for digit in digits:
        try:
            prepared = vision.prepare_digit(digit.astype(np.float32))
        except vision.SeveralDigits:
            taken["refused"] += 1
        except vision.ImageError:
            pass
        else:
            taken["flagged"] += prepared.possible_digits > 1
    return taken


def _latency(args: argparse.Namespace) -> dict[str, float]:
    """p50 and p95 at concurrency 1 of /digit (one-digit canvas) and /number (three-digit
    canvas), one server, the same run."""
    from bench import load
    from bench.options import Load
    from bench.payloads import MULTIPART, Payload, build, multipart
    from bench.servers import ServerSpec, running
    from bench.uploads_corpus import mnist_test_digits
    from tests import drawings

    spec = Load.of(args)
    payloads = build(args.run_dir / "payloads")
    digits, _ = mnist_test_digits()
    canvas = drawings.number_canvas([digits[i] for i in LATENCY_DIGITS])
    body = Path(args.run_dir / "payloads" / "number-canvas3.body")
    body.write_bytes(multipart([("number.png", canvas)]))
    number = Payload("number-canvas3", "/number", body, MULTIPART, 1, canvas)
    figures: dict[str, float] = {}
    with running(ServerSpec("ours-1", args.models_dir, env=spec.env), args.run_dir) as server:
        for payload in (payloads["digit-canvas"], number, payloads["digit-canvas"], number):
            measured = load.measure(
                server.url(payload.endpoint),
                payload,
                concurrency=1,
                seconds=spec.seconds,
                warmup_s=spec.warmup_s,
                server_pid=server.pid,
                out=args.run_dir,
                label=f"{payload.name}-{len(figures)}",
            )
            if measured.load.errors:
                raise SystemExit(f"{payload.name}: {measured.load.errors} errors under load")
            for key, value in (("p50", measured.load.p50_ms), ("p95", measured.load.p95_ms)):
                figures.setdefault(f"{payload.endpoint} {key}", value)
                figures[f"{payload.endpoint} {key}"] = min(
                    figures[f"{payload.endpoint} {key}"], value
                )
    figures["ratio p50"] = figures["/number p50"] / figures["/digit p50"]
    return figures


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    columns = (
        "set", "numbers", "whole number", "digits", "/digit answered", "/digit flagged",
        "/digit confident", "/number refused",
    )  # fmt: skip

    def rows(group: dict[str, dict[str, Any]]) -> list[list[str]]:
        return [
            [
                name,
                str(r["numbers"]),
                f"{r['accuracy']:.1%}",
                f"{r['digit_accuracy']:.2%}",
                str(r["digit_answers"]),
                str(r.get("digit_flagged", "")),
                str(r["digit_confident"]),
                ", ".join(f"{code} {n}" for code, n in r["refusals"].items()) or "0",
            ]
            for name, r in group.items()
        ]

    parts = [
        f"Digit model version {meta['model_version']}; corpus seed {meta['seed']}, "
        f"{meta['count']} numbers per layout and condition. Whole number: read exactly; digits: "
        "1 - edit distance / digits written; /digit answered: pictures /digit answered with one "
        "digit instead of refusing them (422 several_digits or no_digit_found); flagged: "
        "answered with `uncertain: true`; confident: answered unflagged with p >= 0.9.",
        "By layout:\n\n" + table(columns, rows(report["layouts"]), labels=1),
        "Separated numbers (spaced, mixed, slanted) by length:\n\n"
        + table(columns, rows(report["separated_lengths"]), labels=1),
        "By condition (all layouts):\n\n" + table(columns, rows(report["conditions"]), labels=1),
    ]
    if report["mnist_several_digits"] is not None:
        several = report["mnist_several_digits"]
        parts.append(
            f"MNIST's 10,000 test arrays through /digit's preprocessing: {several['refused']} "
            f"refused as several digits, {several['flagged']} flagged as maybe several."
        )
    latency = report["latency"]
    if latency:
        parts.append(
            "At concurrency 1, one process (`ours-1`), best of two runs each, alternated: "
            f"/digit on a one-digit canvas p50 {latency['/digit p50']:.2f} ms (p95 "
            f"{latency['/digit p95']:.2f}), /number on a three-digit canvas p50 "
            f"{latency['/number p50']:.2f} ms (p95 {latency['/number p95']:.2f}): "
            f"{latency['ratio p50']:.2f}x."
        )
    return "\n\n".join(parts)
