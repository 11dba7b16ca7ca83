"""The configuration table in docs/configuration.md, generated from the `Settings` class
(the training settings it extends included).

`python -m service.settings_doc` prints the page, `--write` rewrites docs/configuration.md and
`--check` exits 1 when the committed page differs from the class. The table's descriptions are
the attribute docstrings in service/settings.py, so a setting is documented in one place.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
import textwrap
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from annotated_types import Ge, Gt, Le, Lt
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from service.settings import LOOPBACK_HOSTS, Settings

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

FACTORY_DEFAULTS = {
    "cache_dir": "`$XDG_CACHE_HOME/perceptron`, else `~/.cache/perceptron`",
    "allowed_hosts": ", ".join(f"`{host}`" for host in LOOPBACK_HOSTS),
    "workers": "the number of cores the process may use",
    "models_dir": "`models` in the state folder (`var/models`)",
    "bundled_models_dir": "the `models` folder beside the code (the repository's; `/app/models` "
    "in the image)",
}
"""Defaults computed at run time, described instead of evaluated on this machine."""

_TYPE_NAMES: dict[object, str] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    Path: "path",
    SecretStr: "secret string",
    dict[str, int]: "JSON object",
    list[str]: "comma-separated list",
}

HEADER = """\
# Configuration

<!-- Generated from service/settings.py by `python -m service.settings_doc --write`; do not
edit by hand (tests/containers/test_configuration_doc.py fails when the two differ). -->

Every setting is read from its environment variable, or from a `.env` file in the working
folder (`cp .env.example .env`). Booleans take `true`/`false`; `PERCEPTRON_ENVIRONMENT=production`
refuses to start without a real `PERCEPTRON_ADMIN_TOKEN`. The container image overrides a few
defaults (address, models, state and cache folders): see [containers.md](containers.md).

| Variable | Type | Default | Description |
|---|---|---|---|
"""


@dataclass(frozen=True)
class SettingDoc:
    name: str
    env_names: tuple[str, ...]
    type: str
    default: str
    description: str


def env_names(name: str, field: FieldInfo) -> tuple[str, ...]:
    """The environment variables that set field `name`, the canonical one first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        choices = [c.upper() for c in alias.choices if isinstance(c, str)]
        return tuple(dict.fromkeys(choices))
    if isinstance(alias, str):
        return (alias.upper(),)
    return (f"{Settings.model_config.get('env_prefix', '')}{name}".upper(),)


def accepted_env_names() -> frozenset[str]:
    """Every environment variable name the Settings class reads."""
    return frozenset(n for name, f in Settings.model_fields.items() for n in env_names(name, f))


def attribute_docstrings(cls: type) -> dict[str, str]:
    """The string literal under each annotated attribute of `cls` and of the settings classes
    it derives from, each joined into one line."""
    docs: dict[str, str] = {}
    own = [k for k in cls.__mro__ if issubclass(k, BaseSettings) and k is not BaseSettings]
    for klass in reversed(own):
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0]
        assert isinstance(body, ast.ClassDef)
        for statement, following in zip(body.body, body.body[1:], strict=False):
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def describe_settings() -> list[SettingDoc]:
    """One row per Settings field, in the class's order. Raises ValueError for a field
    without a docstring or with a computed default that FACTORY_DEFAULTS does not describe."""
    docs = attribute_docstrings(Settings)
    rows = []
    for name, field in Settings.model_fields.items():
        if name not in docs:
            raise ValueError(f"Settings.{name} has no docstring; add one under the field")
        rows.append(
            SettingDoc(
                name, env_names(name, field), _type(field), _default(name, field), docs[name]
            )
        )
    return rows


def render() -> str:
    """The whole of docs/configuration.md."""
    lines = []
    for row in describe_settings():
        variables = "<br>".join(f"`{env}`" for env in row.env_names)
        cells = (variables, row.type, row.default, row.description.replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return HEADER + "\n".join(lines) + "\n"


def _type(field: FieldInfo) -> str:
    annotation = field.annotation
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else annotation
    if typing.get_origin(annotation) is typing.Literal:
        text = "one of " + ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    else:
        text = _TYPE_NAMES.get(annotation, str(annotation))
    bounds = [_bound(item) for item in field.metadata if isinstance(item, Ge | Gt | Le | Lt)]
    return text + "".join(f", {b}" for b in bounds) + (", optional" if optional else "")


def _bound(item: Ge | Gt | Le | Lt) -> str:
    if isinstance(item, Ge):
        return f">= {item.ge}"
    if isinstance(item, Gt):
        return f"> {item.gt}"
    if isinstance(item, Le):
        return f"<= {item.le}"
    return f"< {item.lt}"


def _default(name: str, field: FieldInfo) -> str:
    if field.default_factory is not None:
        if field.default_factory is list:
            return "none"
        if field.default_factory is dict:
            return "`{}`"
        if name not in FACTORY_DEFAULTS:
            raise ValueError(f"describe the computed default of {name} in FACTORY_DEFAULTS")
        return FACTORY_DEFAULTS[name]
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.settings_doc", description=__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"rewrite {DOC_PATH.name}")
    action.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    options = parser.parse_args(argv)
    page = render()
    if options.write:
        DOC_PATH.write_text(page, encoding="utf-8")
    elif options.check:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.is_file() else ""
        if current != page:
            sys.stderr.write(f"{DOC_PATH} is stale: run `python -m service.settings_doc --write`\n")
            return 1
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
