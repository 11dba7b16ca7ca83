"""training.metrics: the test-set figures every version's metadata records."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from training.metrics import HEADLINE_METRIC, classification_metrics, regression_metrics

# Six samples of three classes, worked through by hand:
#   true 0 -> predicted 0 (p=0.7), 1 (p_true=0.3)
#   true 1 -> predicted 1 (p=0.8), 1 (p=0.5)
#   true 2 -> predicted 2 (p=0.8), 0 (p_true=0.3)
LABELS = np.array([0, 0, 1, 1, 2, 2], np.uint8)
PROBABILITIES = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.3, 0.6, 0.1],
        [0.1, 0.8, 0.1],
        [0.2, 0.5, 0.3],
        [0.1, 0.1, 0.8],
        [0.6, 0.1, 0.3],
    ],
    np.float32,
)


def test_classification_metrics_match_the_hand_computed_values() -> None:
    metrics = classification_metrics(LABELS, PROBABILITIES, num_classes=3)
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # precision = TP / predicted as the class; recall = TP / truly the class
    assert metrics["precision"] == pytest.approx([1 / 2, 2 / 3, 1 / 1], abs=1e-6)
    assert metrics["recall"] == pytest.approx([1 / 2, 2 / 2, 1 / 2], abs=1e-6)
    assert metrics["f1"] == pytest.approx([0.5, 0.8, 2 / 3], abs=1e-6)
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3, abs=1e-6)
    log_loss = -sum(math.log(p) for p in (0.7, 0.3, 0.8, 0.5, 0.8, 0.3)) / 6
    assert metrics["loss"] == pytest.approx(log_loss, rel=1e-5)
    assert metrics["samples"] == 6


def test_a_class_never_seen_nor_predicted_scores_zero_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = classification_metrics(
            LABELS, np.pad(PROBABILITIES, ((0, 0), (0, 1))), num_classes=4
        )
    assert metrics["precision"][3] == metrics["recall"][3] == metrics["f1"][3] == 0.0
    assert np.array(metrics["confusion_matrix"])[3].sum() == 0
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 4, abs=1e-6)


def test_perfect_predictions() -> None:
    labels = np.arange(10).repeat(3)
    metrics = classification_metrics(labels, np.eye(10, dtype=np.float32)[labels])
    assert metrics["accuracy"] == 1.0
    assert metrics["macro_f1"] == 1.0
    assert metrics["precision"] == metrics["recall"] == metrics["f1"] == [1.0] * 10
    assert metrics["confusion_matrix"] == (np.eye(10, dtype=int) * 3).tolist()
    assert metrics["loss"] == pytest.approx(0.0, abs=1e-6)


def test_a_zero_probability_for_the_true_class_gives_a_finite_loss() -> None:
    metrics = classification_metrics(
        np.array([1]), np.array([[1.0, 0.0]], np.float32), num_classes=2
    )
    assert metrics["loss"] == pytest.approx(-math.log(1e-7), rel=1e-6)
    assert metrics["accuracy"] == 0.0


def test_classification_metrics_are_plain_json() -> None:
    metrics = classification_metrics(LABELS, PROBABILITIES, num_classes=3)
    assert json.loads(json.dumps(metrics)) == metrics


def test_regression_metrics_match_the_numpy_formulas() -> None:
    rng = np.random.default_rng(7)
    targets = rng.uniform(10, 45, size=78)
    predictions = (targets + rng.normal(0, 2, size=78)).astype(np.float32)
    metrics = regression_metrics(targets, predictions[:, None])  # a model's (n, 1) output is fine
    errors = predictions.astype(np.float64) - targets
    assert metrics["mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-12)
    assert metrics["mse"] == pytest.approx((errors**2).mean(), rel=1e-12)
    assert metrics["rmse"] == pytest.approx(math.sqrt((errors**2).mean()), rel=1e-12)
    r2 = 1 - (errors**2).sum() / ((targets - targets.mean()) ** 2).sum()
    assert metrics["r2"] == pytest.approx(r2, rel=1e-12)
    assert metrics["samples"] == 78
    assert json.loads(json.dumps(metrics)) == metrics


def test_regression_metrics_of_exact_and_of_mean_predictions() -> None:
    targets = np.array([18.0, 15.0, 36.0, 27.5])
    exact = regression_metrics(targets, targets.copy())
    assert (exact["mae"], exact["mse"], exact["rmse"], exact["r2"]) == (0.0, 0.0, 0.0, 1.0)
    mean = regression_metrics(targets, np.full(4, targets.mean()))
    assert mean["r2"] == pytest.approx(0.0, abs=1e-12)
    assert mean["mae"] == pytest.approx(np.abs(targets - targets.mean()).mean())


def test_headline_metrics() -> None:
    assert HEADLINE_METRIC == {"digit": ("accuracy", "higher"), "mpg": ("mae", "lower")}
