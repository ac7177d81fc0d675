"""Prometheus metrics of one serving app, in a registry of its own.

Each app gets a private :class:`~prometheus_client.CollectorRegistry`, so several apps (or
tests) in one process never collide. Request metrics are labelled by the variant and the
model version (``name/version``) that answered; load counters, the flag, shadow outcomes
and the prediction log's figures are read from the endpoint at scrape time.
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
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from loopwise.serving.endpoint import Endpoint

# Seconds, from sub-millisecond to a few seconds: a one-row request on loopback is ~1 ms.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class _EndpointCollector(Collector):
    """Figures kept by the endpoint itself, read at scrape time: model loads and load
    failures per variant, the model flag, shadow outcomes and the prediction log."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def collect(self) -> Iterator[Any]:
        endpoint = self.endpoint
        loads = CounterMetricFamily(
            "loopwise_model_loads", "Model versions loaded and swapped in.", labels=["variant"]
        )
        failures = CounterMetricFamily(
            "loopwise_model_load_failures",
            "Model versions that failed to load, to predict on their input example or to "
            "pass the endpoint's smoke tests.",
            labels=["variant"],
        )
        for v in endpoint.variants + endpoint.shadows:
            loads.add_metric([v.name], v.live.loads)
            failures.add_metric([v.name], v.live.failed_loads)
        yield loads
        yield failures
        yield GaugeMetricFamily(
            "loopwise_model_enabled",
            "1 while the model answers, 0 while the flag is off (the fallback answers).",
            value=1 if endpoint.model_enabled else 0,
        )
        if endpoint.shadows:
            shadows = CounterMetricFamily(
                "loopwise_shadow_requests",
                "Requests mirrored to shadow variants, by outcome.",
                labels=["variant", "model", "outcome"],
            )
            counters = endpoint.shadow_counters
            for outcome, table in (("ok", counters.answered), ("error", counters.failed)):
                for (variant, model), count in list(table.items()):
                    shadows.add_metric([variant, model, outcome], count)
            yield shadows
            yield CounterMetricFamily(
                "loopwise_shadow_dropped",
                "Requests not mirrored because the shadow queue was full.",
                value=counters.dropped,
            )
        log = endpoint.log
        if log is not None:
            for name, attr, doc in _LOG_FIGURES:
                family = GaugeMetricFamily if attr == "pending_rows" else CounterMetricFamily
                yield family(name, doc, value=getattr(log, attr))


_LOG_FIGURES = (
    ("loopwise_prediction_log_rows", "rows_written", "Prediction log rows written."),
    ("loopwise_prediction_log_dropped", "rows_dropped", "Rows dropped: the buffer was full."),
    ("loopwise_prediction_log_flush_failures", "flush_failures", "Failed prediction log writes."),
    ("loopwise_prediction_log_pending", "pending_rows", "Rows buffered, not yet written."),
)


class ServingMetrics:
    """The metrics of one app; ``render()`` gives the Prometheus text format."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "loopwise_predict_requests",
            "Prediction requests by variant, model version and outcome "
            "(ok, client_error, server_error).",
            ["variant", "model", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "loopwise_predict_errors",
            "Failed requests by error type.",
            ["type"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "loopwise_predict_latency_seconds",
            "Time to answer a prediction request, by variant and model version.",
            ["variant", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "loopwise_predict_in_flight",
            "Prediction requests being answered.",
            registry=self.registry,
        )
        self.feedback = Counter(
            "loopwise_feedback", "Feedback labels recorded.", registry=self.registry
        )
        self.non_finite = Counter(
            "loopwise_predict_non_finite",
            "Prediction rows answered as null because the model returned NaN or an infinity "
            "(listed in the answer's non_finite_rows), by variant and model version.",
            ["variant", "model"],
            registry=self.registry,
        )
        self.registry.register(_EndpointCollector(endpoint))

    def render(self) -> tuple[bytes, str]:
        """The metrics as Prometheus text, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
