"""Whether a freshly trained version should be served: the `promote` policy of a training run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training import versions
from training.hyperparameters import PromotePolicy
from training.metrics import HEADLINE_METRIC

MAX_MNIST_DROP = 0.001
"""How much MNIST test accuracy (0.1 points) a version trained with user samples may lose
against the served one and still be promoted by `auto`: learning how people write may cost a
few MNIST images, never a visible share."""
_SAME = 1e-9  # accuracies are ratios of counts: equal ones may differ in the last float bit


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    policy: str
    reason: str
    metric: str
    value: float | None
    compared_with_version: int | None = None
    compared_with_value: float | None = None
    user_samples_value: float | None = None
    """Trained with user samples: the new version's accuracy on the held-out ones."""
    compared_with_user_samples_value: float | None = None
    """The served version's accuracy on the same held-out user samples."""

    def as_dict(self) -> dict[str, Any]:
        """The record for metadata and the job; the user-sample fields only when they apply."""
        record = asdict(self)
        for key in ("user_samples_value", "compared_with_user_samples_value"):
            if record[key] is None:
                del record[key]
        return record


def decide_promotion(
    models_dir: Path,
    name: str,
    metrics: dict[str, Any],
    policy: PromotePolicy,
    settings_pin: int | None = None,
    served_user_samples_accuracy: float | None = None,
) -> Promotion:
    """`always` and `never` decide alone; `auto` promotes when the new test metric is at least
    as good as the one of the version the serving policy selects now (or when there is none).

    A version trained with user samples (`user_samples_accuracy` in `metrics`) is judged
    instead by two tests: at least as accurate as the served version on the held-out user
    samples (`served_user_samples_accuracy`, measured by the caller on the same slice), and
    no more than MAX_MNIST_DROP below it on MNIST test."""
    metric, better = HEADLINE_METRIC[name]
    value = _as_float(metrics.get(metric))
    user_value = _as_float(metrics.get("user_samples_accuracy"))

    def decision(
        promoted: bool, reason: str, version: int | None = None, against: float | None = None
    ) -> Promotion:
        return Promotion(
            promoted,
            policy.value,
            reason,
            metric,
            value,
            version,
            against,
            user_value,
            served_user_samples_accuracy,
        )

    if policy is PromotePolicy.always:
        return decision(True, versions.POLICY_REASONS["always"])
    if policy is PromotePolicy.never:
        return decision(False, versions.POLICY_REASONS["never"])
    current = versions.served_version(models_dir, name, settings_pin)
    if current is None:
        return decision(True, "no version is served yet")
    current_meta = versions.read_metadata(versions.version_dir(models_dir, name, current)) or {}
    current_value = _as_float((current_meta.get("metrics") or {}).get(metric))
    if current_value is None:
        return decision(True, f"version {current} records no test {metric}", current)
    if value is None:
        return decision(False, f"the new version has no test {metric}", current, current_value)
    if user_value is not None and served_user_samples_accuracy is not None:
        promoted, reason = _judge_with_user_samples(
            value,
            current_value,
            user_value,
            served_user_samples_accuracy,
            current,
            int(metrics.get("user_samples_count") or 0),
        )
        return decision(promoted, reason, current, current_value)
    good_enough = value >= current_value if better == "higher" else value <= current_value
    relation = "at least as good as" if good_enough else "worse than"
    reason = f"test {metric} {value:.4f} is {relation} version {current}'s {current_value:.4f}"
    return decision(good_enough, reason, current, current_value)


def _judge_with_user_samples(
    value: float,
    served_value: float,
    user_value: float,
    served_user_value: float,
    served: int,
    count: int,
) -> tuple[bool, str]:
    user_ok = user_value >= served_user_value - _SAME
    mnist_ok = value >= served_value - MAX_MNIST_DROP - _SAME
    user_words = (
        f"held-out user samples {user_value:.4f} "
        f"{'is at least' if user_ok else 'is below'} version {served}'s {served_user_value:.4f} "
        f"(the same {count} samples)"
    )
    mnist_words = (
        f"MNIST test accuracy {value:.4f} "
        f"{'is within' if mnist_ok else 'falls more than'} {MAX_MNIST_DROP * 100:.1f} points "
        f"{'of' if mnist_ok else 'below'} version {served}'s {served_value:.4f}"
    )
    return user_ok and mnist_ok, f"{user_words}; {mnist_words}"


def _as_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
