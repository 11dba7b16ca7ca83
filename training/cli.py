"""`python -m training digit|mpg [options]`: train a model and export it as a new version.

Every hyperparameter of the model's schema is an option (`--learning-rate 0.01`,
`--hidden-units 256,128`, `--no-augment`); defaults come from the schema and the paths from
the training settings (DATA_DIR, PERCEPTRON_MODELS_DIR, PERCEPTRON_CACHE_DIR).
"""

from __future__ import annotations

import argparse
import enum
import shlex
import sys
import time
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from training.bundled import seed_models_dir
from training.hyperparameters import (
    DEFAULT_PROMOTE_POLICY,
    HYPERPARAMETERS,
    MODEL_NAMES,
    PromotePolicy,
)
from training.presets import DIGIT_PRESETS
from training.tensorflow_env import quiet_tensorflow


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_field(parser: argparse._ArgumentGroup, name: str, field: FieldInfo) -> None:
    annotation = field.annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in args if a is not type(None))
    default = field.get_default(call_default_factory=True)
    help_text = (field.description or "").rstrip(".")
    shown = default.value if isinstance(default, enum.Enum) else default
    help_text = f"{help_text} (default: {shown})" if help_text else f"default: {shown}"
    common: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
    if annotation is bool:
        parser.add_argument(_option(name), action=argparse.BooleanOptionalAction, **common)
    elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        parser.add_argument(_option(name), choices=[m.value for m in annotation], **common)
    elif typing.get_origin(annotation) is list:
        parser.add_argument(_option(name), type=_int_list, metavar="N[,N...]", **common)
    else:
        parser.add_argument(_option(name), metavar=name.upper(), **common)


def _int_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()] if text.strip() else []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train a model and export it as the next SavedModel version.",
    )
    subparsers = parser.add_subparsers(dest="model", required=True, metavar="{digit,mpg}")
    for name in MODEL_NAMES:
        schema = HYPERPARAMETERS[name]
        sub = subparsers.add_parser(name, help=(schema.__doc__ or "").split("\n")[0])
        paths = sub.add_argument_group("paths")
        paths.add_argument("--data-dir", type=Path, help="folder with the data set (DATA_DIR)")
        paths.add_argument(
            "--models-dir",
            type=Path,
            help="where versions are written (PERCEPTRON_MODELS_DIR; default var/models)",
        )
        paths.add_argument("--cache-dir", type=Path, help="download cache")
        paths.add_argument(
            "--no-download", action="store_true", help="fail instead of downloading data"
        )
        if name == "digit":
            paths.add_argument(
                "--samples-file",
                type=Path,
                help="accepted samples (.npz from GET /samples/export) for --user-samples accepted",
            )
        sub.add_argument(
            "--promote",
            choices=[p.value for p in PromotePolicy],
            default=DEFAULT_PROMOTE_POLICY.value,
            help="serve the new version: auto (only if its test metric is at least as good as "
            "the served version's), always, or never (keep it on disk); "
            f"default: {DEFAULT_PROMOTE_POLICY.value}, as for POST /jobs",
        )
        if name == "digit":
            sub.add_argument(
                "--preset",
                choices=list(DIGIT_PRESETS),
                default="default",
                help="a named recipe; options given beside it override its values "
                "(default: 99.5%% in 10 epochs on 2 CPU cores; best: a 4x larger CNN, "
                "about 3x longer)",
            )
        sub.add_argument(
            "--note",
            help="recorded in the version's metadata.json as `note` (how the run was chosen)",
        )
        group = sub.add_argument_group("hyperparameters")
        for field_name, field in schema.model_fields.items():
            _add_field(group, field_name, field)
    return parser


def _hyperparameters(schema: type[BaseModel], options: argparse.Namespace) -> dict[str, Any]:
    given = {name: getattr(options, name) for name in schema.model_fields if hasattr(options, name)}
    preset = DIGIT_PRESETS.get(getattr(options, "preset", "default"), {})
    return {**preset, **given}


class ConsoleProgress:
    """Prints one line per epoch: stage, loss and metrics, elapsed time and ETA."""

    def __init__(self) -> None:
        self.started_at = time.monotonic()

    def started(self, *, device: str, total_epochs: int, stages: int = 1) -> None:
        if stages > 1:
            per_stage = total_epochs // stages
            print(f"training on {device}: {stages} networks x {per_stage} epochs", flush=True)
        else:
            print(f"training on {device}: {total_epochs} epochs", flush=True)

    def epoch_ended(self, record: dict[str, Any], *, progress: float, eta_s: float | None) -> None:
        skip = {"stage", "epoch", "epochs"}
        logs = "  ".join(
            f"{k}={v:.4g}" for k, v in record.items() if k not in skip and isinstance(v, float)
        )
        eta = f"eta {eta_s:.0f}s" if eta_s is not None else ""
        elapsed = time.monotonic() - self.started_at
        print(
            f"[{record['stage']}] epoch {record['epoch']}/{record['epochs']}  {logs}  "
            f"{elapsed:.0f}s {eta}",
            flush=True,
        )

    def batch_ended(
        self, step: int, steps: int | None, *, progress: float, eta_s: float | None
    ) -> None:
        pass

    def finished(self) -> None:
        print("training finished; evaluating and exporting", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    options = parser.parse_args(argv)
    schema = HYPERPARAMETERS[options.model]
    try:
        hp = schema.model_validate(_hyperparameters(schema, options))
    except ValidationError as exc:
        for error in exc.errors():
            where = _option(str(error["loc"][0])) if error["loc"] else "options"
            parser.error(f"{where}: {error['msg']}")
    from training.settings import TrainingSettings, describe_settings_error

    try:
        settings = TrainingSettings()
    except ValidationError as exc:
        print(f"error: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    models_dir: Path = options.models_dir or settings.models_dir
    try:
        # The served version is what `--promote auto` compares with: the bundled one on a
        # fresh models folder, as for the service.
        seed_models_dir(settings.bundled_models_dir, models_dir)
    except OSError as exc:
        print(f"error: cannot copy the bundled models into {models_dir}: {exc}", file=sys.stderr)
        return 2
    # Heavy imports (TensorFlow) only once the command line and settings are known to be valid.
    quiet_tensorflow()
    from training.data import DataError
    from training.pipeline import DataPaths, run_training
    from training.progress import TrainingDiverged
    from training.served_model import ServedModelError
    from training.user_samples import UserSamplesError

    paths = DataPaths(
        data_dir=options.data_dir or settings.data_dir,
        cache_dir=options.cache_dir or settings.cache_dir,
        download=settings.download_data and not options.no_download,
        user_samples=getattr(options, "samples_file", None),
    )
    command = "python -m training " + " ".join(shlex.quote(a) for a in argv)
    try:
        exported = run_training(
            options.model,
            hp,
            paths=paths,
            models_dir=models_dir,
            observer=ConsoleProgress(),
            promote=PromotePolicy(options.promote),
            command=command,
            settings_pin=settings.pinned_versions.get(options.model),
            note=options.note,
        )
    except (DataError, TrainingDiverged, UserSamplesError, ServedModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _summarise(exported.metadata, exported.path)
    return 0


def _summarise(metadata: dict[str, Any], path: Path) -> None:
    metrics = metadata["metrics"]
    if metadata["model"] == "digit":
        headline = (
            f"test accuracy {metrics['accuracy']:.4%}  loss {metrics['loss']:.4f}  "
            f"macro F1 {metrics['macro_f1']:.4f}"
        )
    else:
        headline = (
            f"test MAE {metrics['mae']:.3f} mpg  RMSE {metrics['rmse']:.3f}  R² {metrics['r2']:.3f}"
        )
    promotion = metadata["promotion"]
    if "user_samples_accuracy" in metrics:
        headline += (
            f"  user samples {metrics['user_samples_accuracy']:.2%} "
            f"({metrics['user_samples_count']} held out, {metrics['user_samples_trained']} "
            f"trained on)"
        )
    print(f"{metadata['model']} version {metadata['version']}: {headline}")
    print(
        f"  parameters {metadata['parameters']:,}  trained in "
        f"{metadata['training_seconds']:.0f}s on {metadata['device']}"
    )
    print(f"  {'served' if promotion['promoted'] else 'not served'}: {promotion['reason']}")
    print(f"  written to {path}")
