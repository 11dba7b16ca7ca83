"""`python -m bench.patched_service module.NAME=LITERAL...`: the API (`python -m service api`)
with module constants replaced first, to measure code choices that are not settings (the
sweep's inline-versus-thread-pool preprocessing threshold, for one)."""

from __future__ import annotations

import ast
import importlib
import sys


def main(argv: list[str]) -> int:
    for item in argv:
        target, _, literal = item.partition("=")
        module_name, _, name = target.rpartition(".")
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            raise SystemExit(f"{module_name} has no {name} to patch")
        setattr(module, name, ast.literal_eval(literal))
    from service.cli import main as service_main

    return service_main(["api"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
