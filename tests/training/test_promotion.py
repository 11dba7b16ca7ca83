"""training.promotion: whether a freshly trained version is served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from training import versions
from training.hyperparameters import PromotePolicy
from training.promotion import decide_promotion


def _existing(
    models: Path, name: str, version: int, metrics: dict[str, Any] | None, promoted: bool = True
) -> None:
    folder = versions.version_dir(models, name, version)
    folder.mkdir(parents=True)
    metadata: dict[str, Any] = {
        "model": name,
        "version": version,
        "promotion": {"promoted": promoted},
    }
    if metrics is not None:
        metadata["metrics"] = metrics
    (folder / versions.METADATA_FILE).write_text(json.dumps(metadata))


@pytest.mark.parametrize("name", ["digit", "mpg"])
def test_always_promotes_even_a_worse_model(tmp_path: Path, name: str) -> None:
    _existing(tmp_path, name, 1, {"accuracy": 0.99, "mae": 1.5})
    worse = {"accuracy": 0.5, "mae": 9.0}
    decision = decide_promotion(tmp_path, name, worse, PromotePolicy.always)
    assert decision.promoted is True
    assert decision.policy == "always"
    assert decision.reason == "served whatever its test metrics, as its trainer asked"


def test_an_earlier_trainer_s_bare_policy_reads_in_words() -> None:
    from training.versions import promotion_reason

    recorded = {"promotion": {"promoted": True, "policy": "always", "reason": "promote=always"}}
    assert promotion_reason(recorded) == "served whatever its test metrics, as its trainer asked"


@pytest.mark.parametrize("name", ["digit", "mpg"])
def test_never_holds_back_even_a_better_model(tmp_path: Path, name: str) -> None:
    _existing(tmp_path, name, 1, {"accuracy": 0.5, "mae": 9.0})
    better = {"accuracy": 0.999, "mae": 1.0}
    decision = decide_promotion(tmp_path, name, better, PromotePolicy.never)
    assert decision.promoted is False
    assert "never" in decision.reason


@pytest.mark.parametrize(
    ("name", "metric", "served", "new", "promoted"),
    [
        ("digit", "accuracy", 0.98, 0.99, True),
        ("digit", "accuracy", 0.98, 0.97, False),
        ("digit", "accuracy", 0.98, 0.98, True),
        ("mpg", "mae", 1.6, 1.5, True),
        ("mpg", "mae", 1.6, 1.7, False),
        ("mpg", "mae", 1.6, 1.6, True),
    ],
    ids=["digit-better", "digit-worse", "digit-equal", "mpg-better", "mpg-worse", "mpg-equal"],
)
def test_auto_compares_the_headline_metric(
    tmp_path: Path, name: str, metric: str, served: float, new: float, promoted: bool
) -> None:
    _existing(tmp_path, name, 1, {metric: served})
    decision = decide_promotion(tmp_path, name, {metric: new}, PromotePolicy.auto)
    assert decision.promoted is promoted
    assert decision.metric == metric
    assert (decision.value, decision.compared_with_version, decision.compared_with_value) == (
        new,
        1,
        served,
    )
    assert ("worse than" in decision.reason) is not promoted
    assert f"{new:.4f}" in decision.reason and f"{served:.4f}" in decision.reason


@pytest.mark.parametrize(
    ("name", "metrics"), [("digit", {"accuracy": 0.1}), ("mpg", {"mae": 20.0})]
)
def test_auto_promotes_when_nothing_is_served(
    tmp_path: Path, name: str, metrics: dict[str, float]
) -> None:
    decision = decide_promotion(tmp_path, name, metrics, PromotePolicy.auto)
    assert decision.promoted is True
    assert decision.reason == "no version is served yet"
    assert decision.compared_with_version is None


def test_auto_promotes_when_only_held_back_versions_exist(tmp_path: Path) -> None:
    _existing(tmp_path, "mpg", 1, {"mae": 1.0}, promoted=False)
    decision = decide_promotion(tmp_path, "mpg", {"mae": 5.0}, PromotePolicy.auto)
    assert decision.promoted is True
    assert decision.reason == "no version is served yet"


def test_auto_compares_with_the_served_version_not_the_newest(tmp_path: Path) -> None:
    _existing(tmp_path, "digit", 1, {"accuracy": 0.97})
    _existing(tmp_path, "digit", 2, {"accuracy": 0.999}, promoted=False)
    decision = decide_promotion(tmp_path, "digit", {"accuracy": 0.98}, PromotePolicy.auto)
    assert decision.promoted is True
    assert decision.compared_with_version == 1


@pytest.mark.parametrize("pin_by", ["api", "settings"])
def test_auto_compares_with_a_pinned_version(tmp_path: Path, pin_by: str) -> None:
    _existing(tmp_path, "mpg", 1, {"mae": 1.5})
    _existing(tmp_path, "mpg", 2, {"mae": 3.0})
    settings_pin = None
    if pin_by == "api":
        versions.write_pin(tmp_path, "mpg", 1)
    else:
        settings_pin = 1
    decision = decide_promotion(tmp_path, "mpg", {"mae": 2.0}, PromotePolicy.auto, settings_pin)
    assert decision.compared_with_version == 1
    assert decision.promoted is False


def test_auto_promotes_over_a_version_without_the_metric(tmp_path: Path) -> None:
    _existing(tmp_path, "digit", 1, None)
    decision = decide_promotion(tmp_path, "digit", {"accuracy": 0.5}, PromotePolicy.auto)
    assert decision.promoted is True
    assert decision.reason == "version 1 records no test accuracy"


def test_auto_holds_back_a_new_version_without_the_metric(tmp_path: Path) -> None:
    _existing(tmp_path, "mpg", 1, {"mae": 1.6})
    decision = decide_promotion(tmp_path, "mpg", {"mae": None}, PromotePolicy.auto)
    assert decision.promoted is False
    assert decision.reason == "the new version has no test mae"


def test_a_boolean_is_not_a_metric(tmp_path: Path) -> None:
    _existing(tmp_path, "digit", 1, {"accuracy": True})
    decision = decide_promotion(tmp_path, "digit", {"accuracy": 0.2}, PromotePolicy.auto)
    assert decision.compared_with_value is None
    assert decision.promoted is True


def test_the_decision_is_recorded_as_a_plain_dict(tmp_path: Path) -> None:
    _existing(tmp_path, "mpg", 4, {"mae": 1.6})
    decision = decide_promotion(tmp_path, "mpg", {"mae": 1.55}, PromotePolicy.auto)
    recorded = json.loads(json.dumps(decision.as_dict()))
    assert recorded == {
        "promoted": True,
        "policy": "auto",
        "reason": "test mae 1.5500 is at least as good as version 4's 1.6000",
        "metric": "mae",
        "value": 1.55,
        "compared_with_version": 4,
        "compared_with_value": 1.6,
    }


@pytest.mark.parametrize(
    ("served_mnist", "new_mnist", "served_user", "new_user", "promoted", "says"),
    [
        (0.9963, 0.9960, 0.80, 0.95, True, "is at least"),
        (0.9963, 0.9953, 0.80, 0.95, True, "is within 0.1 points"),  # exactly the bound
        (0.9963, 0.9952, 0.80, 0.95, False, "falls more than 0.1 points below"),
        (0.9963, 0.9970, 0.80, 0.75, False, "is below version 1's 0.8000"),
        (0.9963, 0.9963, 0.80, 0.80, True, "(the same 20 samples)"),
    ],
    ids=["both-pass", "mnist-at-bound", "mnist-past-bound", "user-worse", "equal"],
)
def test_auto_judges_user_sample_versions_on_both_test_sets(
    tmp_path: Path,
    served_mnist: float,
    new_mnist: float,
    served_user: float,
    new_user: float,
    promoted: bool,
    says: str,
) -> None:
    _existing(tmp_path, "digit", 1, {"accuracy": served_mnist})
    metrics = {"accuracy": new_mnist, "user_samples_accuracy": new_user, "user_samples_count": 20}
    decision = decide_promotion(
        tmp_path, "digit", metrics, PromotePolicy.auto, served_user_samples_accuracy=served_user
    )
    assert decision.promoted is promoted, decision.reason
    assert says in decision.reason
    assert decision.user_samples_value == new_user
    assert decision.compared_with_user_samples_value == served_user
    assert decision.compared_with_version == 1
