"""The options several commands share, each defined once.

`--out` and `--write-results` every command gets from the CLI; the others a command asks for in
its `add_arguments`: `models_dir(parser)`, `load(parser, ...)` (read back typed with
`Load.of(args)`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bench import REPO


def csv(text: str) -> tuple[str, ...]:
    """argparse `type=` for `a,b,c`."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def ints(text: str) -> tuple[int, ...]:
    """argparse `type=` for `1,8,32`."""
    return tuple(int(part) for part in csv(text))


def setting(text: str) -> tuple[str, str]:
    """argparse `type=` for `PERCEPTRON_X=V`."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected PERCEPTRON_X=VALUE, got {text!r}")
    return key, value


def models_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models-dir", type=Path, default=REPO / "models", help="served models (default models/)"
    )


def load(
    parser: argparse.ArgumentParser,
    *,
    seconds: float,
    warmup: float,
    concurrency: tuple[int, ...],
) -> None:
    """How wrk drives the server; `Load.of(args)` reads them back."""
    group = parser.add_argument_group("load")
    group.add_argument(
        "--seconds", type=float, default=seconds, help=f"per measured run (default {seconds:g})"
    )
    group.add_argument(
        "--warmup",
        type=float,
        default=warmup,
        help=f"discarded warm-up seconds (default {warmup:g})",
    )
    group.add_argument(
        "--concurrency", type=ints, default=concurrency,
        help=f"clients, comma-separated (default {','.join(map(str, concurrency))})",
    )  # fmt: skip
    group.add_argument(
        "--set", type=setting, action="append", default=[], metavar="PERCEPTRON_X=V",
        help="a setting for our service (repeatable)",
    )  # fmt: skip


@dataclass(frozen=True)
class Load:
    """The load options, typed: what every command that drives a server passes on."""

    seconds: float
    warmup_s: float
    concurrency: tuple[int, ...]
    env: dict[str, str]

    @classmethod
    def of(cls, args: argparse.Namespace) -> Load:
        return cls(
            seconds=args.seconds,
            warmup_s=args.warmup,
            concurrency=tuple(args.concurrency),
            env=dict(args.set),
        )
