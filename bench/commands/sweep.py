"""Our service alone under each candidate setting, on the requests that decide the targets.

A variant is a set of PERCEPTRON_* settings (a code choice worth measuring is a setting, so
nothing is patched). Every variant gets a fresh server; compare variants within one sweep.
Writes the section named by `--section` (default `sweep`).
"""

from __future__ import annotations

import argparse
import json

from bench import options
from bench.commands.serve import run_serve
from bench.options import Load
from bench.results import Section, table

VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "batch max 16": {"PERCEPTRON_BATCH_MAX_SIZE": "16"},
    "batch max 32": {"PERCEPTRON_BATCH_MAX_SIZE": "32"},
    "batch max 128": {"PERCEPTRON_BATCH_MAX_SIZE": "128"},
    "batching off (wait 0)": {"PERCEPTRON_BATCH_MAX_WAIT_MS": "0"},
    "wait 0.5 ms": {"PERCEPTRON_BATCH_MAX_WAIT_MS": "0.5"},
    "wait 5 ms": {"PERCEPTRON_BATCH_MAX_WAIT_MS": "5"},
    "wait 20 ms": {"PERCEPTRON_BATCH_MAX_WAIT_MS": "20"},
    "TF intra 1": {"PERCEPTRON_TF_INTRA_OP_THREADS": "1"},
    "TF intra 2": {"PERCEPTRON_TF_INTRA_OP_THREADS": "2"},
    "TF inter 1": {"PERCEPTRON_TF_INTER_OP_THREADS": "1"},
    "TF intra 1 inter 1": {
        "PERCEPTRON_TF_INTRA_OP_THREADS": "1",
        "PERCEPTRON_TF_INTER_OP_THREADS": "1",
    },
    "log WARNING (no access log)": {"PERCEPTRON_LOG_LEVEL": "WARNING"},
    "plain-text logs": {"PERCEPTRON_LOG_JSON": "false"},
    "preprocess always in thread pool": {"PERCEPTRON_INLINE_PREPROCESS_BYTES": "0"},
    "preprocess always inline": {"PERCEPTRON_INLINE_PREPROCESS_BYTES": str(1 << 30)},
}
"""Variant name -> the settings it changes from the defaults."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.models_dir(parser)
    options.load(parser, seconds=8, warmup=2, concurrency=(1, 32))
    parser.add_argument(
        "--only", type=options.csv, default=tuple(VARIANTS), help="; ".join(VARIANTS)
    )
    parser.add_argument("--payloads", type=options.csv, default=("digit-canvas", "mpg-one"))
    parser.add_argument("--section", default="sweep", help="RESULTS.md section (default sweep)")


def run(args: argparse.Namespace) -> list[Section]:
    unknown = set(args.only) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; known: {list(VARIANTS)}")
    how = Load.of(args)
    rows, measured = [], []
    for index, name in enumerate(args.only):
        print(f"[{index + 1}/{len(args.only)}] {name}", flush=True)
        variant = Load(how.seconds, how.warmup_s, how.concurrency, {**how.env, **VARIANTS[name]})
        out = args.run_dir / f"{index:02d}"
        ours = run_serve(args.models_dir, out, variant, ("ours",), args.payloads, None)["servers"][
            "ours"
        ]
        measured.append({"variant": name, "env": variant.env, **ours})
        row = [name]
        for r in ours["runs"]:
            flag = f" ({r['errors']} err)" if r["errors"] else ""
            row += [
                f"{r['rps']:,.0f}{flag}",
                f"{r['p50_ms']:.2f}",
                f"{r['cpu_ms_per_request']:.2f}",
            ]
        rows.append(row)
    (args.run_dir / "sweep.json").write_text(json.dumps(measured, indent=2))
    columns = ["variant"]
    for r in measured[0]["runs"] if measured else []:
        columns += [f"{r['payload']} c={r['concurrency']} req/s", "p50 ms", "CPU ms/req"]
    text = (
        f"wrk, {how.seconds:g} s per run after a {how.warmup_s:g} s warm-up; a fresh server "
        f"per variant. Raw outputs: `{args.run_dir}`.\n\n" + table(columns, rows, labels=1)
    )
    return [Section(args.section, text)]
