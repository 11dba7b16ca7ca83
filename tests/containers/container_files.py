"""Readers for the container files (Dockerfile, docker-compose.yml, .env.example, .dockerignore)
that the tests compare with the code. No Docker engine is needed: the files are parsed."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
MAKEFILE = REPO / "Makefile"

PERCEPTRON_SERVICES = ("api", "worker", "worker-gpu")
"""Compose services that run this project's image."""
SETTING_NAME = re.compile(r"\b(?:PERCEPTRON_[A-Z0-9_]+|DATA_DIR)\b")
"""What looks like a setting's environment variable anywhere in a file."""
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int
    """Index of the FROM this instruction belongs to (-1 before the first FROM)."""


def dockerfile_instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    stage, pending = -1, ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, even inside a continued instruction
        pending = f"{pending} {stripped}" if pending else stripped
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), arguments.strip(), stage))
        pending = ""
    return instructions


@cache
def dockerfile() -> list[Instruction]:
    return dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))


def final_stage() -> list[Instruction]:
    instructions = dockerfile()
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def env_assignments(arguments: str) -> dict[str, str]:
    """`ENV A=1 B=2` as {"A": "1", "B": "2"}."""
    return dict(word.split("=", 1) for word in shlex.split(arguments))


def image_env() -> dict[str, str]:
    """The environment the final image sets (later ENV lines win)."""
    env: dict[str, str] = {}
    for instruction in final_stage():
        if instruction.keyword == "ENV":
            env.update(env_assignments(instruction.arguments))
    return env


def build_arg_default(name: str) -> str:
    for instruction in dockerfile():
        if instruction.keyword == "ARG" and instruction.arguments.startswith(f"{name}="):
            return instruction.arguments.split("=", 1)[1]
    raise LookupError(f"the Dockerfile declares no ARG {name} with a default")


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def compose_strings() -> list[str]:
    """Every string key and value in docker-compose.yml (comments excluded)."""
    return _strings(compose())


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def compose_variables(text: str) -> dict[str, str | None]:
    """Every `${VAR}` / `${VAR:-default}` in `text`: name -> default (None when it has none)."""
    return {match[1]: match[2] for match in _VARIABLE.finditer(text)}


def interpolate(value: str) -> str:
    """`value` with every `${VAR:-default}` replaced by its default, as with no .env."""
    return _VARIABLE.sub(lambda match: match[2] or "", value)


def python_module_commands(command: list[str]) -> list[str]:
    """The subcommand of `python -m service <subcommand>`, or [] for another command."""
    if command[:3] == ["python", "-m", "service"]:
        return command[3:]
    return []


def env_example_keys() -> dict[str, bool]:
    """Keys named in .env.example: name -> whether the line is active (not commented out)."""
    keys: dict[str, bool] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(#\s*)?([A-Z_][A-Z0-9_]*)=", line.strip())
        if match:
            keys[match[2]] = keys.get(match[2], False) or match[1] is None
    return keys


def tool(name: str, install_hint: str) -> str:
    """The path of a command-line tool: next to this Python (the venv) first, then PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        import pytest

        pytest.fail(f"{name} is not installed; {install_hint}")
    return found
