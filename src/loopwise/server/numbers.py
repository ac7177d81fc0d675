"""Metric values in JSON, where NaN and ±inf have no number literal.

loopwise stores NaN and ±inf as metric values (a diverged loss is information), but JSON
has no literal for them and the API's bodies are strict JSON. Answers therefore spell them
as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (protobuf's JSON mapping of
doubles, which MLflow's REST API uses too); requests may send those strings, or ``null``
for NaN (what ``JSON.stringify(NaN)`` writes in a browser).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

#: The spellings of the non-finite values, both ways.
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
NonFinite = Literal["NaN", "Infinity", "-Infinity"]


def number_out(value: float) -> float | str:
    """``value`` as JSON can carry it: itself when finite, else its string spelling."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def number_in(value: float | int | str | None) -> float:
    """A metric value from a request: a number, one of :data:`NON_FINITE`'s strings, or
    None (NaN). The request model has already refused anything else."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        return NON_FINITE[value]
    return float(value)


def metrics_out(metrics: Mapping[str, float]) -> dict[str, Any]:
    """A dict of metric values with the non-finite ones spelled out."""
    return {key: number_out(value) for key, value in metrics.items()}


__all__ = ["NON_FINITE", "NonFinite", "metrics_out", "number_in", "number_out"]
