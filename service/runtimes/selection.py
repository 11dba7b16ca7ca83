"""Which runtime serves a loaded version, by the `model_runtime` setting:

* `tensorflow`: the SavedModel's serving signature;
* `auto` (the default): LiteRT when a copy of the version converts and agrees with the
  SavedModel on the probe batch (`service.runtimes.agreement`), else TensorFlow, with the reason
  kept for `/models`, `/metrics` and the log;
* `litert`: LiteRT or nothing: a version without a copy that agrees fails to load, and the
  version served before keeps serving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.runtimes import Runner, Tensors
from service.runtimes.agreement import Disagreement, check_agreement, input_specs, probe_inputs
from service.runtimes.copies import Copy, copies, forget
from service.runtimes.litert import LiteRTRunner
from service.runtimes.saved_model import SavedModelRunner
from service.settings import Settings, available_cores
from training.litert import describe_conversion_error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeFallback:
    """Why TensorFlow serves a version although LiteRT was asked for. `code` and `message`
    name no file and no exception; `detail` does, for the log and administrators."""

    code: str
    message: str
    detail: str


@dataclass
class Selection:
    runner: Runner
    fallback: RuntimeFallback | None = None
    source: str | None = None
    """Where the LiteRT copy came from (`service.runtimes.copies.Copy.source`)."""
    differences: dict[str, float] = field(default_factory=dict)
    """The largest difference per output between the copy and the SavedModel on the probe."""


class _NoAgreeingCopy(Exception):
    def __init__(self, fallback: RuntimeFallback) -> None:
        super().__init__(fallback.message)
        self.fallback = fallback


def litert_threads(settings: Settings) -> int:
    """LiteRT's threads in this process: PERCEPTRON_TF_INTRA_OP_THREADS when set, else this
    worker's share of the cores."""
    return settings.tf_intra_op_threads or max(1, available_cores() // settings.workers)


def select_runner(
    name: str,
    version: int,
    path: Path,
    saved_model: Any,
    metadata: dict[str, Any],
    settings: Settings,
) -> Selection:
    """The runner for version `version` of model `name`, loaded from `path` as `saved_model`.
    Raises RuntimeError when the setting asks for LiteRT alone and no copy agrees."""
    tensorflow = SavedModelRunner(saved_model)
    if settings.model_runtime == "tensorflow":
        return Selection(tensorflow)
    where = {"model": name, "version": version}
    try:
        selection = _litert_selection(path, saved_model, tensorflow, metadata, settings, where)
    except _NoAgreeingCopy as refused:
        fallback = refused.fallback
        if settings.model_runtime == "litert":
            raise RuntimeError(f"{fallback.message} ({fallback.detail})") from None
        log.warning(
            "version %d of %s serves with TensorFlow: %s (%s)",
            version,
            name,
            fallback.message,
            fallback.detail,
            extra=where,
        )
        return Selection(tensorflow, fallback)
    log.info(
        "version %d of %s serves with LiteRT (copy %s; largest difference from the SavedModel "
        "on the probe batch: %s)",
        version,
        name,
        selection.source,
        ", ".join(f"{output} {value:.2g}" for output, value in selection.differences.items()),
        extra=where,
    )
    return selection


def _litert_selection(
    path: Path,
    saved_model: Any,
    tensorflow: SavedModelRunner,
    metadata: dict[str, Any],
    settings: Settings,
    where: dict[str, Any],
) -> Selection:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError as exc:
        raise _NoAgreeingCopy(
            RuntimeFallback("litert_unavailable", "LiteRT is not installed", str(exc))
        ) from None
    from training.signatures import SERVING_SIGNATURE_KEY

    probes = probe_inputs(input_specs(saved_model.signatures[SERVING_SIGNATURE_KEY]), metadata)
    expected = tensorflow(probes)
    threads = litert_threads(settings)
    problem = None
    try:
        for copy in copies(path, settings.runtime_cache_dir or settings.cache_dir / "litert"):
            outcome = _try_copy(copy, expected, probes, threads)
            if isinstance(outcome, Selection):
                return outcome
            forget(copy)
            problem = outcome
            log.info(
                "version %d of %s: LiteRT copy %s skipped (%s)",
                where["version"],
                where["model"],
                copy.source,
                problem.detail,
                extra=where,
            )
    except Exception as exc:  # the converter refused the model
        problem = RuntimeFallback(
            "litert_conversion_failed",
            "the model could not be converted for LiteRT",
            describe_conversion_error(exc),
        )
    assert problem is not None  # the last copy, a conversion, either served or failed
    raise _NoAgreeingCopy(problem)


def _try_copy(
    copy: Copy, expected: Tensors, probes: Tensors, threads: int
) -> Selection | RuntimeFallback:
    """The copy as a runner when it agrees with the SavedModel's answers `expected` to
    `probes`; else why not."""
    try:
        runner = LiteRTRunner(copy.flatbuffer, threads=threads)
        differences = check_agreement(expected, runner, probes)
    except Disagreement as exc:
        return RuntimeFallback(
            "litert_disagrees",
            "the LiteRT copy's answers differ from the SavedModel's",
            f"copy {copy.source}: {exc}",
        )
    except Exception as exc:  # a copy the interpreter cannot load or run
        return RuntimeFallback(
            "litert_failed",
            "the LiteRT copy could not be run",
            f"copy {copy.source}: {_describe(exc)}",
        )
    return Selection(runner, source=copy.source, differences=differences)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:400]}" if text else type(exc).__name__
