"""What a command publishes: sections of bench/RESULTS.md, Markdown tables, and the one helper
that writes them.

A command returns `Section`s; the CLI prints them and, with `--write-results`, `publish`
replaces each between its `<!-- bench:NAME -->` markers, leaving the rest of the file alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.machine import summary_line

RESULTS_FILE = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True)
class Section:
    name: str
    """The marker's name: the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`."""
    body: str
    stamped: bool = True
    """Starts with the machine, the load and the command line; False for a section derived
    from earlier runs."""


def stamp(machine: dict[str, Any], load_after: float, others: list[str], command: str) -> str:
    """The first line of every measured section: when, on what, under what load, how."""
    also = " Also running: " + "; ".join(others) + "." if others else ""
    return (
        f"Measured {machine['date']} on {summary_line(machine)}; load average "
        f"{machine['load_average'][0]:.2f} before, {load_after:.2f} after.{also} "
        f"Command: `{command}`."
    )


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], labels: int = 2) -> str:
    """A Markdown table, padded so that it reads aligned in a terminal too: the first `labels`
    columns left-aligned, the others (figures) right-aligned."""
    rows = [list(row) for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        padded = (
            c.ljust(w) if i < labels else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 2) if i < labels else "-" * (w + 1) + ":" for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(columns), rule, *map(line, rows)])


def replace_section(path: Path, name: str, markdown: str) -> None:
    """Replaces the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in `path`
    (appending the section when it is missing), leaving the rest of the file alone."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    path.write_text(text, encoding="utf-8")


def publish(sections: Iterable[Section], stamp_line: str, path: Path = RESULTS_FILE) -> None:
    """Writes each section into `path`, the measured ones under `stamp_line`."""
    for section in sections:
        body = f"{stamp_line}\n\n{section.body}" if section.stamped else section.body
        replace_section(path, section.name, body)
