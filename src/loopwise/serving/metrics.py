"""Prometheus metrics of one serving app, in a registry of its own.

Each app gets a private :class:`~prometheus_client.CollectorRegistry`, so several apps (or
tests) in one process never collide. Request metrics are labelled by the model version
(``name/version``) that answered; load counters are read from the :class:`LiveModel`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from loopwise.serving.live_model import LiveModel

# Seconds, from sub-millisecond to a few seconds: a one-row request on loopback is ~1 ms.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class _LoadCollector(Collector):
    """Model loads and load failures, read from the live model at scrape time."""

    def __init__(self, live: LiveModel) -> None:
        self.live = live

    def collect(self) -> Iterator[Any]:
        yield CounterMetricFamily(
            "loopwise_model_loads", "Model versions loaded and swapped in.", value=self.live.loads
        )
        yield CounterMetricFamily(
            "loopwise_model_load_failures",
            "Model versions that failed to load or to predict on their input example.",
            value=self.live.failed_loads,
        )


class ServingMetrics:
    """The metrics of one app; ``render()`` gives the Prometheus text format."""

    def __init__(self, live: LiveModel) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "loopwise_predict_requests",
            "Prediction requests by model version and outcome (ok, client_error, server_error).",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "loopwise_predict_errors",
            "Failed prediction requests by error type.",
            ["type"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "loopwise_predict_latency_seconds",
            "Time to answer a prediction request, by model version.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "loopwise_predict_in_flight",
            "Prediction requests being answered.",
            registry=self.registry,
        )
        self.registry.register(_LoadCollector(live))

    def render(self) -> tuple[bytes, str]:
        """The metrics as Prometheus text, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
