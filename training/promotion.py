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
    common = {"policy": policy.value, "metric": metric, "value": value}
    if policy is PromotePolicy.always:
        return Promotion(True, reason="promote=always", **common)
    if policy is PromotePolicy.never:
        return Promotion(False, reason="promote=never: kept on disk, not served", **common)
    current = versions.served_version(models_dir, name, settings_pin)
    if current is None:
        return Promotion(True, reason="no version is served yet", **common)
    current_meta = versions.read_metadata(versions.version_dir(models_dir, name, current)) or {}
    current_value = _as_float((current_meta.get("metrics") or {}).get(metric))
    compared = {"compared_with_version": current, "compared_with_value": current_value}
    if current_value is None:
        return Promotion(
            True, reason=f"version {current} records no test {metric}", **common, **compared
        )
    if value is None:
        return Promotion(False, reason=f"the new version has no test {metric}", **common, **compared)
    good_enough = value >= current_value if better == "higher" else value <= current_value
    relation = "at least as good as" if good_enough else "worse than"
    reason = (
        f"test {metric} {value:.4f} is {relation} version {current}'s {current_value:.4f}"
    )
    return Promotion(good_enough, reason=reason, **common, **compared)


def _as_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
