"""Whether a freshly trained version should be served: the `promote` policy of a training run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training import versions
from training.hyperparameters import PromotePolicy
from training.metrics import HEADLINE_METRIC


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    policy: str
    reason: str
    metric: str
    value: float | None
    compared_with_version: int | None = None
    compared_with_value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_promotion(
    models_dir: Path,
    name: str,
    metrics: dict[str, Any],
    policy: PromotePolicy,
    settings_pin: int | None = None,
) -> Promotion:
    """`always` and `never` decide alone; `auto` promotes when the new test metric is at least
    as good as the one of the version the serving policy selects now (or when there is none)."""
    metric, better = HEADLINE_METRIC[name]
    value = _as_float(metrics.get(metric))

    def decision(
        promoted: bool, reason: str, version: int | None = None, against: float | None = None
    ) -> Promotion:
        return Promotion(promoted, policy.value, reason, metric, value, version, against)

    if policy is PromotePolicy.always:
        return decision(True, "promote=always")
    if policy is PromotePolicy.never:
        return decision(False, "promote=never: kept on disk, not served")
    current = versions.served_version(models_dir, name, settings_pin)
    if current is None:
        return decision(True, "no version is served yet")
    current_meta = versions.read_metadata(versions.version_dir(models_dir, name, current)) or {}
    current_value = _as_float((current_meta.get("metrics") or {}).get(metric))
    if current_value is None:
        return decision(True, f"version {current} records no test {metric}", current)
    if value is None:
        return decision(False, f"the new version has no test {metric}", current, current_value)
    good_enough = value >= current_value if better == "higher" else value <= current_value
    relation = "at least as good as" if good_enough else "worse than"
    reason = f"test {metric} {value:.4f} is {relation} version {current}'s {current_value:.4f}"
    return decision(good_enough, reason, current, current_value)


def _as_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
