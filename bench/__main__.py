"""`python -m bench COMMAND [options]`: the benchmarks; `python -m bench COMMAND --help`.

Each module of `bench.commands` is a command: its docstring says what it measures,
`add_arguments(parser)` declares its options and `run(args)` measures and returns the sections
of bench/RESULTS.md it produced. This CLI adds the options every command shares (`--out`,
`--write-results`), stamps each section with the machine, the load and the command line,
prints it, keeps a copy in the run's folder and, with `--write-results`, publishes it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import shlex
import sys
import time
from pathlib import Path
from types import ModuleType

import bench.commands
from bench import REPO, machine
from bench.results import RESULTS_FILE, Section, publish, stamp

OUT = REPO / "bench" / "out"


def commands() -> dict[str, ModuleType]:
    """Every command module, by name (modules starting with `_` are not commands)."""
    found = pkgutil.iter_modules(bench.commands.__path__)
    names = sorted(module.name for module in found if not module.name.startswith("_"))
    return {name: importlib.import_module(f"bench.commands.{name}") for name in names}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    subparsers = top.add_subparsers(dest="name", required=True, metavar="COMMAND")
    for name, module in commands().items():
        doc = module.__doc__ or name
        command = subparsers.add_parser(
            name,
            help=doc.splitlines()[0],
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        shared = command.add_argument_group("every command")
        shared.add_argument("--out", type=Path, default=OUT, help="raw outputs (default bench/out)")
        shared.add_argument(
            "--write-results", action="store_true", help="publish the sections in bench/RESULTS.md"
        )
        command.set_defaults(module=module)
    return top


def _default_data_dir() -> None:
    """As the Makefile does: the shared data folder next to the checkout, when DATA_DIR is unset."""
    shared = REPO.parent / "shared" / "data"
    if not os.environ.get("DATA_DIR") and (shared / "mnist.npz").exists():
        os.environ["DATA_DIR"] = str(shared)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    _default_data_dir()
    args.command = shlex.join(["python", "-m", "bench", *argv])
    args.run_dir = args.out / f"{args.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    args.run_dir.mkdir(parents=True, exist_ok=True)
    args.machine = machine.describe()
    others = machine.competing_work()
    if others:
        print("warning: also running; figures will be low and noisy:\n  " + "\n  ".join(others))
    sections: list[Section] = args.module.run(args)
    others = sorted(set(others) | set(machine.competing_work()))
    line = stamp(args.machine, os.getloadavg()[0], others, args.command)
    printed = [line] + [f"<!-- bench:{s.name} -->\n{s.body}" for s in sections]
    print("\n\n" + "\n\n".join(printed))
    (args.run_dir / "sections.md").write_text("\n\n".join(printed) + "\n", encoding="utf-8")
    if args.write_results and sections:
        publish(sections, line)
        print(f"\nwritten to {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
