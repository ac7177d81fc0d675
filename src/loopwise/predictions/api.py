"""The module-level prediction-log API: ``lw.read_predictions``, ``lw.log_predictions``,
``lw.log_feedback``, ``lw.compact_predictions`` and ``lw.trace_prediction``, bound to the
default store (see :mod:`loopwise.context`).

The service functions taking a Store are in :mod:`loopwise.predictions.log` and
:mod:`loopwise.predictions.tracing`. With a ``tracking_url`` each function goes through
the server instead (:class:`loopwise.client.predictions.RemotePredictions`): same
arguments, same answers, same errors.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from loopwise import context
from loopwise.predictions import log as service

if TYPE_CHECKING:
    import pandas as pd

    from loopwise.predictions.compaction import CompactionResult
    from loopwise.predictions.tracing import PredictionTrace

__all__ = [
    "compact_predictions",
    "log_feedback",
    "log_predictions",
    "read_predictions",
    "trace_prediction",
]


def read_predictions(
    endpoint: str, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Predictions of ``endpoint`` with a timestamp in [start, end), joined with feedback.

    ``start`` and ``end`` are timezone-aware datetimes (None: unbounded). Columns: the
    logged ones (``request_id``, ``row``, ``timestamp``, ``variant``, ``model``,
    ``prediction``, ..., ``input.<feature>``) plus ``label`` and ``feedback_timestamp``
    from the latest feedback for each row. See ``docs/prediction-log.md``.
    """
    http = context.remote_http()
    if http is not None:
        from loopwise.client.predictions import RemotePredictions

        return RemotePredictions(http).read_predictions(endpoint, start, end)
    return service.read_predictions(context.local_store(), endpoint, start, end)


def log_predictions(
    endpoint: str,
    frame: Any,
    *,
    model: Any = None,
    variant: str = "batch",
    timestamp: datetime | None = None,
) -> service.LoggedRows:
    """Log a frame with a ``prediction`` column and feature columns for ``endpoint``
    (batch scoring, models running elsewhere), written now. See
    :func:`loopwise.predictions.log.log_predictions`. Through a server, ``model`` is
    ``"name/version"`` or a ModelVersion (its label travels)."""
    http = context.remote_http()
    if http is not None:
        from loopwise.client.predictions import RemotePredictions

        return RemotePredictions(http).log_predictions(
            endpoint, frame, model=model, variant=variant, timestamp=timestamp
        )
    return service.log_predictions(
        context.local_store(), endpoint, frame, model=model, variant=variant, timestamp=timestamp
    )


def log_feedback(endpoint: str, frame: Any) -> service.LoggedRows:
    """Log ground-truth labels for ``endpoint``: a frame with ``request_id`` and ``label``,
    optionally ``row`` and ``timestamp``. See
    :func:`loopwise.predictions.log.log_feedback`."""
    http = context.remote_http()
    if http is not None:
        from loopwise.client.predictions import RemotePredictions

        return RemotePredictions(http).log_feedback(endpoint, frame)
    return service.log_feedback(context.local_store(), endpoint, frame)


def trace_prediction(
    endpoint: str,
    request_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> PredictionTrace:
    """Trace one request of ``endpoint`` back to the model version that answered it, that
    version's run (params, metrics, code), training data, the alias moves that made it live
    and its promotion decisions. ``start``/``end`` (timezone-aware) bound the search for ids
    that are not loopwise ids. See ``docs/tracing.md`` and
    :func:`loopwise.predictions.tracing.trace_prediction`."""
    http = context.remote_http()
    if http is not None:
        from loopwise.client.predictions import RemotePredictions
        from loopwise.registry.api import model_lineage

        remote = RemotePredictions(http)
        return remote.trace_prediction(endpoint, request_id, start, end, lineage=model_lineage)
    from loopwise.predictions.tracing import trace_prediction as trace

    return trace(context.local_store(), endpoint, request_id, start=start, end=end)


def compact_predictions(
    endpoint: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    settle: str | timedelta = "10m",
) -> CompactionResult:
    """Merge each hour of ``endpoint``'s prediction log and feedback that ended at least
    ``settle`` ago into one file (the files of ``log_predictions`` calls, of several serving
    processes, or left by a killed one), so reading a long range opens few files. Safe while
    the endpoint serves and in several processes at once. See ``docs/prediction-log.md`` and
    :func:`loopwise.predictions.compaction.compact_predictions`."""
    http = context.remote_http()
    if http is not None:
        from loopwise.client.predictions import RemotePredictions

        return RemotePredictions(http).compact_predictions(endpoint, start, end, settle=settle)
    from loopwise.predictions.compaction import compact_predictions as compact

    return compact(context.local_store(), endpoint, start, end, settle=settle)
