"""Test-set metrics recorded in every version's metadata, computed with NumPy from predictions."""

from __future__ import annotations

from typing import Any

import numpy as np


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, num_classes: int = 10
) -> dict[str, Any]:
    """Accuracy, log loss, per-class precision/recall/F1, macro F1 and the confusion matrix
    (rows are true classes, columns predictions)."""
    labels = labels.astype(np.int64)
    predictions = probabilities.argmax(axis=1)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    true_positives = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    actual = confusion.sum(axis=1).astype(np.float64)
    precision = np.divide(true_positives, predicted, out=np.zeros(num_classes), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros(num_classes), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros(num_classes), where=denominator > 0
    )
    picked = probabilities[np.arange(len(labels)), labels]
    loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    return {
        "accuracy": float(true_positives.sum() / max(len(labels), 1)),
        "loss": loss,
        "precision": [round(float(p), 6) for p in precision],
        "recall": [round(float(r), 6) for r in recall],
        "f1": [round(float(f), 6) for f in f1],
        "macro_f1": float(f1.mean()),
        "confusion_matrix": confusion.tolist(),
        "samples": len(labels),
    }


def regression_metrics(targets: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """MAE, MSE, RMSE and R² of predictions against targets."""
    targets = targets.astype(np.float64).ravel()
    predictions = predictions.astype(np.float64).ravel()
    errors = predictions - targets
    mse = float(np.mean(errors**2))
    variance = float(np.sum((targets - targets.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(errors))),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "r2": 1.0 - float(np.sum(errors**2)) / variance if variance > 0 else 0.0,
        "samples": len(targets),
    }


HEADLINE_METRIC = {"digit": ("accuracy", "higher"), "mpg": ("mae", "lower")}
"""The test metric each model is judged by when deciding promotion."""
