"""The prediction log through a ``loopwise server``: what ``lw.read_predictions``,
``lw.log_predictions``, ``lw.log_feedback``, ``lw.trace_prediction`` and
``lw.compact_predictions`` do when ``tracking_url`` is set.

Each call checks its arguments here, with the checks (and so the messages) of the local
services, before anything is sent, then answers what the local service answers: the same
DataFrame columns and types, :class:`~loopwise.predictions.log.LoggedRows`,
:class:`~loopwise.predictions.tracing.PredictionTrace`,
:class:`~loopwise.predictions.compaction.CompactionResult`, the same errors.

How the data travels: frames of predictions go up, and ranges of the log come back, as
Parquet (the types survive the trip); feedback labels go up as JSON in chunks of
:data:`FEEDBACK_CHUNK` rows (each chunk is written as the server gets it: if one fails, the
error names the files the earlier chunks wrote, as a local call names the hours it wrote).
A model goes as its ``name/version`` label: a registered version (a ModelVersion, or
``"credit-risk/3"``) or a model served elsewhere, never a fitted object, which the local
call refuses too.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import polars as pl

from loopwise.client.http import HttpClient
from loopwise.data.frames import to_polars
from loopwise.errors import InvalidInput, LoopwiseError
from loopwise.param_errors import bad_param
from loopwise.predictions.compaction import CompactionResult, settle_seconds
from loopwise.predictions.files import check_endpoint, check_time, feedback_from_frame, model_fields
from loopwise.predictions.log import LoggedRows
from loopwise.predictions.tracing import PredictionTrace, check_trace_call

if TYPE_CHECKING:
    import pandas as pd

    from loopwise.registry.lineage import ModelLineage

#: The media type frames of predictions travel as.
PARQUET = "application/vnd.apache.parquet"
#: Labels per feedback request (the server takes at most 100,000).
FEEDBACK_CHUNK = 50_000
#: A feedback chunk whose JSON grows past this is split again (the server's JSON limit is
#: 64 MiB).
FEEDBACK_BYTES = 32 * 1024**2


def _path(endpoint: str) -> str:
    return "/endpoints/" + quote(endpoint, safe="")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _range(func: str, start: Any, end: Any) -> dict[str, str | None]:
    """``start``/``end`` checked as the local read checks them, as query parameters."""
    start_us, end_us = check_time(start, "start", func), check_time(end, "end", func)
    if start_us is not None and end_us is not None and end_us < start_us:
        raise bad_param(func, "end", f"at or after start ({start})", end)
    return {"start": _iso(start), "end": _iso(end)}


class RemotePredictions:
    """The prediction-log services of one server, over its :class:`HttpClient`."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"<RemotePredictions {self.http.url}>"

    def read_predictions(
        self, endpoint: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """Predictions of ``endpoint`` in [start, end), joined with feedback: one Parquet
        download, read into the frame a local read gives."""
        check_endpoint(endpoint, "read_predictions")
        params = {k: v for k, v in _range("read_predictions", start, end).items() if v}
        sink = io.BytesIO()
        with self.http.stream(f"{_path(endpoint)}/predictions.parquet", params) as answer:
            for chunk in answer.iter_bytes():
                sink.write(chunk)
        sink.seek(0)
        return pl.read_parquet(sink).to_pandas()

    def log_predictions(
        self,
        endpoint: str,
        frame: Any,
        *,
        model: Any = None,
        variant: str = "batch",
        timestamp: datetime | None = None,
    ) -> LoggedRows:
        """Upload ``frame`` as Parquet; the server logs it as the local call would."""
        func = "log_predictions"
        check_endpoint(endpoint, func)
        if not isinstance(variant, str) or not variant:
            raise bad_param(func, "variant", "a non-empty str", variant)
        label, version_id = model_fields(model, func)
        check_time(timestamp, "timestamp", func)
        data = _parquet(to_polars(frame, what=f"the frame given to {func}"), func)
        params = {
            "model": label,
            "model_version_id": version_id,
            "variant": variant,
            "timestamp": _iso(timestamp),
        }
        answer = self.http.request(
            "POST",
            f"{_path(endpoint)}/predictions",
            params={k: v for k, v in params.items() if v is not None},
            content=data,
            headers={"Content-Type": PARQUET},
        )
        return LoggedRows.from_dict(answer)

    def log_feedback(self, endpoint: str, frame: Any) -> LoggedRows:
        """Send the labels of ``frame`` (checked and given their times here, as the local
        call does) in chunks; the rows and files of every chunk."""
        func = "log_feedback"
        check_endpoint(endpoint, func)
        labels = feedback_from_frame(to_polars(frame, what=f"the frame given to {func}"))
        if labels.height == 0:
            return LoggedRows(0, ())
        body = _label_rows(labels)
        rows, files = 0, []
        for part in _chunks(body):
            try:
                answer = self.http.request(
                    "POST",
                    f"{_path(endpoint)}/feedback",
                    content=part,
                    headers={"Content-Type": "application/json"},
                )
            except LoopwiseError as e:
                if not files:
                    raise
                raise type(e)(f"{e} (already written by this call: {tuple(files)})") from e
            written = LoggedRows.from_dict(answer)
            rows += written.rows
            files += written.files
        return LoggedRows(rows, tuple(files))

    def trace_prediction(
        self,
        endpoint: str,
        request_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        lineage: Callable[[str], ModelLineage],
    ) -> PredictionTrace:
        """The server's trace of one request (it searches its log and registry).

        The trace's document summarises the version's lineage; ``lineage(uri)`` (the
        registry's ``model_lineage``, through the same server) gives the full record."""
        check_trace_call(endpoint, request_id, start, end)
        answer = self.http.get(
            f"{_path(endpoint)}/trace/{quote(request_id, safe='')}",
            start=_iso(start),
            end=_iso(end),
        )
        version = answer.get("model_version")
        found = None
        if version is not None and answer.get("lineage") is not None:
            found = lineage(f"models:/{version['name']}/{version['version']}")
        return PredictionTrace.from_dict(answer, lineage=found)

    def compact_predictions(
        self,
        endpoint: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        settle: str | timedelta = "10m",
    ) -> CompactionResult:
        """Compaction run by the server, on its store (safe while the endpoint serves)."""
        func = "compact_predictions"
        check_endpoint(endpoint, func)
        body: dict[str, Any] = _range(func, start, end)
        body["settle"] = settle_seconds(settle, func)
        return CompactionResult.from_dict(self.http.post(f"{_path(endpoint)}/compact", body))


def _parquet(frame: pl.DataFrame, func: str) -> bytes:
    """``frame`` as Parquet bytes; a column Parquet cannot hold is named."""
    sink = io.BytesIO()
    try:
        frame.write_parquet(sink)
    except (pl.exceptions.PolarsError, ValueError, TypeError) as e:
        odd = [n for n, t in frame.schema.items() if t == pl.Object]
        which = f"column(s) {odd} hold Python objects" if odd else str(e).splitlines()[0]
        raise InvalidInput(
            f"the frame given to {func} cannot be sent to the server as Parquet: {which}. "
            "Convert such columns to numbers, text or lists first."
        ) from e
    return sink.getvalue()


def _label_rows(labels: pl.DataFrame) -> pl.DataFrame:
    """The checked labels as the feedback route's items: every time explicit (so the
    chunks of one call share its time, as a local call's rows do), labels JSON can hold."""
    label = labels["label"]
    dtype = label.dtype
    if not (dtype == pl.Boolean or dtype.is_numeric() or dtype == pl.String):
        raise InvalidInput(
            f"the frame given to log_feedback has labels of type {dtype}; a server takes "
            "numbers, booleans or text as labels. Convert the label column to one of those."
        )
    if dtype.is_float() and not label.is_finite().all():
        bad = int((~label.is_finite()).sum())
        raise InvalidInput(
            f"the frame given to log_feedback has {bad} label(s) that are NaN or infinite, "
            "which JSON cannot carry to a server; drop them or fill them."
        )
    stamp = pl.col("timestamp").dt.convert_time_zone("UTC")
    return labels.select(
        "request_id",
        "label",
        "row",
        stamp.dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("timestamp"),
    )


def _chunks(items: pl.DataFrame) -> list[bytes]:
    """The feedback request bodies for ``items``: at most :data:`FEEDBACK_CHUNK` labels and
    about :data:`FEEDBACK_BYTES` each."""
    bodies: list[bytes] = []
    pending = [items.slice(at, FEEDBACK_CHUNK) for at in range(0, items.height, FEEDBACK_CHUNK)]
    while pending:
        part = pending.pop(0)
        encoded = b'{"labels": ' + part.write_json().encode() + b"}"
        if len(encoded) > FEEDBACK_BYTES and part.height > 1:
            half = part.height // 2
            pending[:0] = [part.slice(0, half), part.slice(half)]
            continue
        bodies.append(encoded)
    return bodies


__all__ = ["FEEDBACK_CHUNK", "PARQUET", "RemotePredictions"]
