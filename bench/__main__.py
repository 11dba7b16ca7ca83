"""`python -m bench serve|memory|overhead|sweep|train|mpg|soak|uploads|preprocess|figure|abuse|
feedback`; `python -m bench COMMAND --help`.

* `serve`: our service against the bare FastAPI ceiling, the naive `model.predict` baseline and
  the in-process compute ceiling; prints the table, ratios and targets.
* `memory`: resident memory of our service over a sustained load run (5 minutes by default).
* `overhead`: the service's own CPU per request without HTTP (the ASGI app in process), for
  this checkout and, with `--against REV`, an earlier commit in the same run.
* `sweep`: our service under each candidate setting (batching, TensorFlow threads, logging...).
* `train`: seconds per epoch and time to the accuracy bar of the digit models on this machine.
* `mpg`: the MPG recipe's candidates cross-validated on the training rows; the default's test
  MAE over seeds.
* `soak`: mixed traffic, a training job and version swaps for minutes (issue 8's soak).
* `uploads`: accuracy and preprocessing time on realistic uploads (photos, scans, canvases),
  per condition of `bench.uploads_corpus`, and on MNIST's test set through the preprocessing.
* `preprocess`: decode + preprocess time per upload against the previous preprocessing and the
  bare decode, measured in the same run; `--libraries` compares OpenCV with SciPy/Pillow.
* `figure`: docs/preprocessing.png, the README's figure of each preprocessing step.
* `abuse`: issue 16's attacks against a live server: /healthz stalls, memory, descriptors.
* `feedback`: issue 13's experiment: fine-tuning the served digit model on 200 accepted
  corrections of an under-represented writing style, measured on that style and on MNIST.

`--write-results` puts the figures into bench/RESULTS.md, each command in its own section.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS_FILE = BENCH / "RESULTS.md"
OUT = BENCH / "out"


def _default_data_dir() -> None:
    """As the Makefile does: the shared data folder next to the checkout, when DATA_DIR is unset."""
    shared = REPO.parent / "shared" / "data"
    if not os.environ.get("DATA_DIR") and (shared / "mnist.npz").exists():
        os.environ["DATA_DIR"] = str(shared)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in _csv(text))


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def _command_line(argv: list[str]) -> str:
    return shlex.join(["python", "-m", "bench", *argv])


def _latest(pattern: str, name: str, *, accept: Any = None) -> dict[str, Any] | None:
    for folder in sorted(OUT.glob(pattern), reverse=True):
        path = folder / name
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            if accept is None or accept(data):
                return data
    return None


def _latest_serve() -> dict[str, Any] | None:
    return _latest("serve-*", "results.json", accept=lambda r: not r["meta"].get("quick"))


def _latest_memory() -> dict[str, Any] | None:
    return _latest("memory-*", "memory.json")


def _write_targets() -> None:
    from bench.report import render_targets_markdown, replace_section

    serve = _latest_serve()
    if serve is not None:
        replace_section(RESULTS_FILE, "targets", render_targets_markdown(serve, _latest_memory()))


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", type=Path, default=REPO / "models", help="default: models/")
    parser.add_argument(
        "--tool", choices=("wrk", "hey"), default=None, help="load tool (default wrk, else hey)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="raw outputs (default bench/out)")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")


def _parse_common(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    from bench.load import default_tool

    options = parser.parse_args(argv)
    options.tool = options.tool or default_tool()
    return options


def _serve(argv: list[str]) -> int:
    from bench.report import render_markdown, render_text, replace_section
    from bench.serve import ALL_PAYLOADS, QUICK_PAYLOADS, ServeOptions, run_serve
    from bench.servers import SERVER_KINDS

    parser = argparse.ArgumentParser(
        prog="python -m bench serve",
        description="Our service against its ceilings and the naive baseline.",
    )
    _add_common(parser)
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds in all: a smoke test, not figures"
    )
    parser.add_argument(
        "--servers", type=_csv, default=SERVER_KINDS, help=f"default: {','.join(SERVER_KINDS)}"
    )
    parser.add_argument(
        "--payloads", type=_csv, default=None, help=f"default: {','.join(ALL_PAYLOADS)}"
    )
    parser.add_argument(
        "--concurrency", type=_ints, default=(1, 8, 32, 64), help="default: 1,8,32,64"
    )
    parser.add_argument("--seconds", type=float, default=None, help="per measured run (default 10)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="discarded warm-up per run (default 3)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PERCEPTRON_X=V",
        help="a setting for our service",
    )
    options = _parse_common(parser, argv)
    quick = options.quick
    serve_options = ServeOptions(
        models_dir=options.models_dir,
        out=options.out / f"serve-{time.strftime('%Y%m%d-%H%M%S')}",
        servers=options.servers,
        payloads=options.payloads or (QUICK_PAYLOADS if quick else ALL_PAYLOADS),
        concurrency=options.concurrency,
        seconds=options.seconds or (1 if quick else 10),
        warmup_s=options.warmup if options.warmup is not None else (0 if quick else 3),
        compute_seconds=0.3 if quick else 3,
        tool=options.tool,
        env=_pairs(options.set),
        command=_command_line(["serve", *argv]),
        quick=quick,
    )
    results = run_serve(serve_options)
    print()
    print(render_text(results, None if quick else _latest_memory()))
    if options.write_results:
        if quick:
            raise SystemExit("--quick runs are smoke tests; they are not written to RESULTS.md")
        replace_section(RESULTS_FILE, "serve", render_markdown(results))
        _write_targets()
        print(f"\nwritten to {RESULTS_FILE}")
    return 0


def _memory(argv: list[str]) -> int:
    from bench.memory import MemoryOptions, render_markdown, run_memory
    from bench.report import replace_section

    parser = argparse.ArgumentParser(
        prog="python -m bench memory", description="RSS of our service over a sustained load run."
    )
    _add_common(parser)
    parser.add_argument("--duration", type=float, default=300, help="seconds of load (default 300)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=20,
        help="seconds of load before the start sample (default 20)",
    )
    parser.add_argument("--set", action="append", default=[], metavar="PERCEPTRON_X=V")
    options = _parse_common(parser, argv)
    report = run_memory(
        MemoryOptions(
            models_dir=options.models_dir,
            out=options.out,
            duration_s=options.duration,
            warmup_s=options.warmup,
            tool=options.tool,
            env=_pairs(options.set),
            command=_command_line(["memory", *argv]),
        )
    )
    text = render_markdown(report)
    print(text)
    if options.write_results:
        replace_section(RESULTS_FILE, "memory", text)
        _write_targets()
        print(f"\nwritten to {RESULTS_FILE}")
    return 0


def _overhead(argv: list[str]) -> int:
    from bench.app_overhead import compare, render

    parser = argparse.ArgumentParser(
        prog="python -m bench overhead",
        description="The service's own CPU per request, the ASGI app called in process.",
    )
    parser.add_argument("--models-dir", type=Path, default=REPO / "models", help="default: models/")
    parser.add_argument("--against", default=None, metavar="REV", help="also measure this commit")
    parser.add_argument(
        "--requests",
        type=_csv,
        default=("mpg-one:32", "mpg-one:1", "digit-canvas:1"),
        help="NAME:CONCURRENCY,... (default mpg-one:32,mpg-one:1,digit-canvas:1)",
    )
    parser.add_argument("--count", type=int, default=4000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    requests = [(name, int(c)) for name, _, c in (r.partition(":") for r in options.requests)]
    rows = compare(
        REPO, options.against, requests, options.count, options.rounds, options.models_dir
    )
    print(f"Command: `{_command_line(['overhead', *argv])}`\n")
    print(render(rows, options.rounds))
    return 0


def _sweep(argv: list[str]) -> int:
    from bench.report import replace_section
    from bench.sweep import (
        PAYLOADS,
        VARIANTS,
        SweepOptions,
        render_markdown,
        render_text,
        run_sweep,
    )

    names = [v.name for v in VARIANTS]
    parser = argparse.ArgumentParser(
        prog="python -m bench sweep", description="Our service under each candidate configuration."
    )
    _add_common(parser)
    parser.add_argument(
        "--only",
        type=_csv,
        default=None,
        help="variant names (comma-separated): " + "; ".join(names),
    )
    parser.add_argument("--payloads", type=_csv, default=PAYLOADS)
    parser.add_argument("--concurrency", type=_ints, default=(1, 32))
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument(
        "--section", default="sweep", help="RESULTS.md section to write (default sweep)"
    )
    options = _parse_common(parser, argv)
    variants = VARIANTS
    if options.only:
        unknown = set(options.only) - set(names)
        if unknown:
            raise SystemExit(f"unknown variants {sorted(unknown)}; known: {names}")
        variants = tuple(v for v in VARIANTS if v.name in options.only)
    report = run_sweep(
        SweepOptions(
            models_dir=options.models_dir,
            out=options.out / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}",
            variants=variants,
            payloads=options.payloads,
            concurrency=options.concurrency,
            seconds=options.seconds,
            warmup_s=options.warmup,
            tool=options.tool,
            command=_command_line(["sweep", *argv]),
        )
    )
    print()
    print(render_text(report))
    if options.write_results:
        replace_section(RESULTS_FILE, options.section, render_markdown(report))
        print(f"\nwritten to {RESULTS_FILE}")
    return 0


def _train(argv: list[str]) -> int:
    from bench.train import main as train_main

    return train_main(argv, results_file=RESULTS_FILE, out=OUT)


def _feedback(argv: list[str]) -> int:
    from bench.feedback_learning import main as feedback_main

    return feedback_main(
        argv, results_file=RESULTS_FILE, out=OUT, command=_command_line(["feedback", *argv])
    )


def _mpg(argv: list[str]) -> int:
    from bench.mpg_cv import main as mpg_main

    return mpg_main(argv, results_file=RESULTS_FILE, out=OUT)


def _soak(argv: list[str]) -> int:
    from bench.report import replace_section
    from bench.soak import SoakOptions, run_soak
    from bench.soak_report import render_markdown, render_text

    parser = argparse.ArgumentParser(
        prog="python -m bench soak",
        description="Mixed traffic, a training job and version swaps: `python -m service run`.",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=REPO / "models",
        help="served versions copied (default models/)",
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="measured run (default 5)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=20.0,
        help="seconds of traffic before the start sample (default 20)",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="clients (default 64)")
    parser.add_argument(
        "--job-epochs", type=int, default=30, help="epochs of the mpg training job (default 30)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="raw outputs (default bench/out)")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    options = parser.parse_args(argv)
    report = run_soak(
        SoakOptions(
            models_dir=options.models_dir,
            out=options.out,
            minutes=options.minutes,
            warmup_s=options.warmup,
            concurrency=options.concurrency,
            job_epochs=options.job_epochs,
            command=_command_line(["soak", *argv]),
        )
    )
    print()
    print(render_text(report))
    if options.write_results:
        replace_section(RESULTS_FILE, "soak", render_markdown(report))
        print(f"\nwritten to {RESULTS_FILE}")
    return 0


def _uploads(argv: list[str]) -> int:
    from bench.uploads import main as uploads_main

    return uploads_main(argv, results_file=RESULTS_FILE, repo=REPO)


def _preprocess(argv: list[str]) -> int:
    from bench.preprocess_speed import main as preprocess_main

    return preprocess_main(argv, results_file=RESULTS_FILE, repo=REPO)


def _figure(argv: list[str]) -> int:
    from bench.preprocessing_figure import render_figure
    from bench.uploads_corpus import mnist_test_digits

    parser = argparse.ArgumentParser(prog="python -m bench figure", description=_figure.__doc__)
    parser.add_argument("--test-index", type=int, default=15, help="MNIST test digit (15: a 5)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "preprocessing.png")
    options = parser.parse_args(argv)
    digits, _ = mnist_test_digits()
    render_figure(digits[options.test_index], options.output)
    print(f"written to {options.output}")
    return 0


_figure.__doc__ = "The README's figure: each preprocessing step on a photo-like upload."


def _abuse(argv: list[str]) -> int:
    from bench.abuse import ATTACKS, render_markdown, run_abuse
    from bench.report import replace_section

    parser = argparse.ArgumentParser(
        prog="python -m bench abuse",
        description="Issue 16's attacks against a live `python -m service api` on loopback.",
    )
    parser.add_argument("--models-dir", type=Path, default=REPO / "models", help="default: models/")
    parser.add_argument(
        "--only", type=_csv, default=tuple(ATTACKS), help="attacks: " + ",".join(ATTACKS)
    )
    parser.add_argument("--out", type=Path, default=OUT, help="raw outputs (default bench/out)")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    options = parser.parse_args(argv)
    unknown = set(options.only) - set(ATTACKS)
    if unknown:
        raise SystemExit(f"unknown attacks {sorted(unknown)}; known: {list(ATTACKS)}")
    report = run_abuse(
        options.models_dir,
        options.out / f"abuse-{time.strftime('%Y%m%d-%H%M%S')}",
        list(options.only),
        _command_line(["abuse", *argv]),
    )
    text = render_markdown(report)
    print(text)
    if options.write_results:
        replace_section(RESULTS_FILE, "abuse", text)
        print(f"\nwritten to {RESULTS_FILE}")
    return 0


COMMANDS = {
    "serve": _serve,
    "memory": _memory,
    "overhead": _overhead,
    "sweep": _sweep,
    "train": _train,
    "mpg": _mpg,
    "soak": _soak,
    "uploads": _uploads,
    "preprocess": _preprocess,
    "figure": _figure,
    "abuse": _abuse,
    "feedback": _feedback,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    _default_data_dir()
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
