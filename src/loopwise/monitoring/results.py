"""The figures of one evaluated window: what the engine produces and alert rules read.

Metric names (stable strings; ``<f>`` is a feature name):

- ``rows``, ``labelled`` (rows with feedback), ``throughput_rps``, ``error_rate``,
  ``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms``;
- ``missing.<f>`` (share of nulls), ``schema.errors``, ``schema.warnings`` (anomalies of a
  validation of the window's inputs against the reference schema);
- ``drift.<f>`` (the drift score of a feature against the reference), ``drifted.<f>``
  (1.0 when the feature drifted, else 0.0), ``drift.share`` (share of features drifted);
- ``prediction.mean``, ``prediction.std``, ``prediction.positive_rate`` (classification:
  share of the positive class), ``prediction.drift`` (score), ``prediction.drifted``;
- ``perf.<metric>`` from feedback (classification: accuracy, precision, recall, f1,
  roc_auc when scores exist; regression: rmse, mae, r2);
- ``custom.<name>`` for custom checks.

A slice is ``""`` for the whole window, or ``"column=value"``.

``problems`` says what kept figures of a window from being computed while the others were
(feedback labels that share no value with the model's predictions: no ``perf.*``), one
message each, stored with the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

OVERALL = ""


@dataclass(frozen=True)
class WindowResult:
    """Figures of one window of one monitor, for the model version live in it."""

    monitor: str
    endpoint: str
    start: datetime
    end: datetime
    model: str  # "name/version", "" when the log has none
    model_version_id: str | None
    rows: int
    labelled: int
    values: dict[tuple[str, str], float | None] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def value(self, metric: str, slice: str = OVERALL) -> float | None:
        """One figure (None when it could not be computed, e.g. no feedback yet)."""
        return self.values.get((slice, metric))

    def slices(self) -> list[str]:
        """The slices with figures, the whole window first."""
        found = sorted({s for s, _ in self.values} - {OVERALL})
        return [OVERALL, *found]

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "endpoint": self.endpoint,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "model": self.model,
            "model_version_id": self.model_version_id,
            "rows": self.rows,
            "labelled": self.labelled,
            "values": [
                {"slice": s, "metric": m, "value": v} for (s, m), v in sorted(self.values.items())
            ],
            "problems": list(self.problems),
        }
