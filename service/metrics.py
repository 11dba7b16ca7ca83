"""Prometheus metrics, one registry per app (tests build many apps in one process).

With several serving processes (service/cli/processes.py sets PROMETHEUS_MULTIPROC_DIR before they
start), every process writes its values to memory-mapped files in that folder and `exposition`
sums them over the processes; the served-version gauge keeps one series per live process (a
`pid` label), so a process that has not yet picked up a new version shows.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._add_request_metrics(self.registry)
        self._add_model_metrics(self.registry)

    def _add_request_metrics(self, r: CollectorRegistry) -> None:
        self.http_requests = Counter(
            "perceptron_http_requests",
            "HTTP requests by route template and status",
            ("method", "route", "status"),
            registry=r,
        )
        self.http_latency = Histogram(
            "perceptron_http_request_duration_seconds",
            "HTTP request latency by route template",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prediction_latency = Histogram(
            "perceptron_prediction_duration_seconds",
            "Prediction request latency by endpoint, model and served version",
            ("endpoint", "model", "version"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "perceptron_predictions",
            "Rows predicted by model and version",
            ("model", "version"),
            registry=r,
        )
        self.feedback = Counter(
            "perceptron_digit_feedback",
            "Feedback samples received, by source and whether the answer was right",
            ("source", "agreed"),
            registry=r,
        )
        self.digit_classes = Counter(
            "perceptron_digit_predictions",
            "Digit predictions by predicted class",
            ("digit",),
            registry=r,
        )
        self.shed_requests = Counter(
            "perceptron_shed_requests",
            "Requests refused with 503 because the inference queue was full",
            ("model",),
            registry=r,
        )

    def _add_model_metrics(self, r: CollectorRegistry) -> None:
        self.inference_latency = Histogram(
            "perceptron_inference_duration_seconds",
            "Duration of one model call (one batch)",
            ("model", "version"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "perceptron_inference_batch_rows",
            "Rows per model call",
            ("model",),
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.model_loads = Counter(
            "perceptron_model_loads",
            "Model version loads by outcome (loaded, failed)",
            ("model", "version", "outcome"),
            registry=r,
        )
        self.served_version = Gauge(
            "perceptron_model_served_version",
            "Version each model is serving (0 when none)",
            ("model",),
            registry=r,
            multiprocess_mode="liveall",
        )
        self.model_runtime = Gauge(
            "perceptron_model_runtime",
            "1 for the runtime computing each model's served version (litert or tensorflow)",
            ("model", "runtime"),
            registry=r,
            multiprocess_mode="liveall",
        )
        self.runtime_fallbacks = Counter(
            "perceptron_runtime_fallbacks",
            "Versions served with TensorFlow although LiteRT was asked for, by reason "
            "(litert_conversion_failed, litert_disagrees, litert_failed, litert_unavailable)",
            ("model", "version", "reason"),
            registry=r,
        )


def exposition(metrics: ServiceMetrics) -> bytes:
    """The text /metrics answers: this process's registry, or with several serving processes
    the sum over all of them (read from PROMETHEUS_MULTIPROC_DIR)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return generate_latest(metrics.registry)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
