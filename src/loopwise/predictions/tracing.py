"""``trace_prediction``: one logged request, traced back to everything behind it.

Why: a team must show which model version made a given decision at a given time, what it
was trained on, and why it was allowed into production. The prediction log knows the
request (inputs, answer, label, the ``name/version`` that answered); the registry knows
the version, its run, params, code and data (:func:`~loopwise.registry.lineage.model_lineage`),
the alias moves that made it live and the promotion decisions that let it in. This module
joins the two for one request id, reading as little of the log as it can:

- a loopwise id (what ``/predict`` answers with) starts with its creation time, so only
  the hour it names and the nearest neighbouring hour are searched, as the server's own
  look-up does;
- any other id (given to ``log_predictions``) carries no time: the given ``[start, end)``,
  or else the whole log, is scanned reading only the key columns;

then only the hour(s) holding the request are read in full, with their feedback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from loopwise.clock import EPOCH
from loopwise.errors import InvalidReference, NotFound
from loopwise.ids import id_time_ms, is_id
from loopwise.param_errors import bad_param
from loopwise.predictions.files import FALLBACK, check_endpoint
from loopwise.predictions.log import read_feedback, read_predictions_frame
from loopwise.registry.lineage import ModelLineage, model_lineage
from loopwise.registry.models import alias_history, get_model_version
from loopwise.registry.promotion_history import PromotionRecord, promotion_history
from loopwise.registry.records import AliasMove, ModelVersion
from loopwise.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PredictionTrace", "check_trace_call", "trace_prediction"]

_HOUR = timedelta(hours=1)
_HOUR_MS = 3_600_000
_FUNC = "trace_prediction"


@dataclass(frozen=True, eq=False)
class PredictionTrace:
    """One request of an endpoint and everything behind its answer.

    ``rows`` are the request's logged rows (one per input row: ``input.<feature>``,
    ``prediction``, ``probabilities``, ``label``, ``feedback_timestamp``, ``latency_ms``,
    ``error``, ...) and ``shadows`` the shadow models' rows for it, kept apart. ``version``
    is the registry's version behind ``model`` (None for the fallback, or when the version
    is not in this store: ``notes`` says which); ``lineage`` its run, params, code, data
    and evaluations; ``aliases`` the aliases that pointed at it at ``timestamp`` and
    ``alias_events`` the moves that put it there (who, when, from which version, why);
    ``promotions`` the promotion decisions recorded for it.
    """

    endpoint: str
    request_id: str
    timestamp: datetime
    variant: str | None
    model: str | None
    version: ModelVersion | None
    rows: pd.DataFrame
    shadows: pd.DataFrame
    lineage: ModelLineage | None = None
    aliases: tuple[str, ...] = ()
    alias_events: tuple[AliasMove, ...] = ()
    promotions: tuple[PromotionRecord, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def fallback(self) -> bool:
        """True when the endpoint's fallback answered (model flag off, walking skeleton)."""
        return self.model == FALLBACK

    @property
    def error(self) -> str | None:
        """The error type the request failed with (None when it was answered)."""
        if "error" not in self.rows.columns:
            return None
        errors = [e for e in self.rows["error"] if isinstance(e, str)]
        return errors[0] if errors else None

    @property
    def predictions(self) -> list[Any]:
        """The prediction of each row, in row order."""
        return _column(self.rows, "prediction")

    @property
    def labels(self) -> list[Any]:
        """The latest feedback label of each row (None where none arrived)."""
        return _column(self.rows, "label")

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data (NaN as None, times as ISO 8601)."""
        return {
            "endpoint": self.endpoint,
            "request_id": self.request_id,
            "timestamp": self.timestamp.isoformat(),
            "variant": self.variant,
            "model": self.model,
            "fallback": self.fallback,
            "error": self.error,
            "model_version": None if self.version is None else self.version.to_dict(),
            "notes": list(self.notes),
            "rows": _records(self.rows),
            "shadows": _records(self.shadows),
            "lineage": None if self.lineage is None else _plain(self.lineage.to_dict()),
            "aliases": list(self.aliases),
            "alias_events": [e.to_dict() for e in self.alias_events],
            "promotions": [p.to_dict() for p in self.promotions],
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, lineage: ModelLineage | None = None
    ) -> PredictionTrace:
        """The trace :meth:`to_dict` described (what the remote client reads back).

        The document holds a summary of the lineage only, so the caller passes the full
        :class:`ModelLineage` (the remote client reads it from the registry's route). The
        rows come back as JSON gives them: their times as UTC datetimes again, NaN and
        infinities as null (NaN in float columns)."""
        version = data.get("model_version")
        rows = _frame(data.get("rows") or [])
        shadow_rows = data.get("shadows") or []
        # No shadow rows: an empty frame with the request's columns, as the local trace has.
        shadows = _frame(shadow_rows) if shadow_rows else rows.iloc[:0]
        return cls(
            endpoint=data["endpoint"],
            request_id=data["request_id"],
            timestamp=datetime.fromisoformat(data["timestamp"]),
            variant=data.get("variant"),
            model=data.get("model"),
            version=None if version is None else ModelVersion.from_dict(version),
            rows=rows,
            shadows=shadows,
            lineage=lineage,
            aliases=tuple(data.get("aliases") or ()),
            alias_events=tuple(AliasMove.from_dict(e) for e in data.get("alias_events") or ()),
            promotions=tuple(PromotionRecord.from_dict(p) for p in data.get("promotions") or ()),
            notes=tuple(data.get("notes") or ()),
        )

    def summary(self) -> str:
        """A few readable lines: the request, the version, its run and data, how it got live."""
        head = f"request {self.request_id} of endpoint {self.endpoint!r} at {_iso(self.timestamp)}"
        answer = self.version.uri if self.version is not None else self.model or "no model"
        lines = [head, f"  variant {self.variant or '-'}, answered by {answer}"]
        if self.error is not None:
            lines.append(f"  failed: {self.error}")
        else:
            lines.append(f"  {len(self.rows)} row(s): predictions {self.predictions}")
            lines.append(f"  labels {self.labels}")
        for name, group in _shadow_groups(self.shadows):
            lines.append(f"  shadow {name}: {group}")
        lineage = self.lineage
        run = None if lineage is None else lineage.run
        if lineage is not None and run is not None:
            lines.append(f"run {run.name} ({run.id}), experiment {run.experiment}")
            lines.append(f"  code {_git_text(lineage.code_version)}")
            if run.params:
                lines.append(
                    "  params " + ", ".join(f"{k}={v}" for k, v in sorted(run.params.items()))
                )
            if run.metrics:
                lines.append(
                    "  metrics " + ", ".join(f"{k}={v:.6g}" for k, v in sorted(run.metrics.items()))
                )
        elif self.version is not None:
            lines.append("run: none recorded (the model was logged outside a run)")
        if lineage is not None:
            data = ", ".join(d.uri for d in lineage.datasets) or "no dataset versions recorded"
            lines.append(f"trained on {data}")
        for event in self.alias_events:
            lines.append(f"live via {_move_text(event)}")
        for decision in self.promotions:
            lines.append(f"promotion: {decision.summary()}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def trace_prediction(
    store: Store,
    endpoint: str,
    request_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> PredictionTrace:
    """Find ``request_id`` in ``endpoint``'s prediction log and trace it to the model
    version, run, data, alias moves and promotion decisions behind it.

    A loopwise id is looked for in the hour its time names and the nearest neighbouring
    hour; any other id in ``[start, end)`` (timezone-aware; None: unbounded), or the whole
    log without them. ``start``/``end`` given with a loopwise id replace the id's hours.
    :class:`NotFound` for an unknown endpoint (naming the endpoints with a log) or request
    (naming what was searched).
    """
    _check(store, endpoint, request_id, start, end)
    found = _find(store, endpoint, request_id, start, end)
    shadow = pl.col("shadow").fill_null(False)
    primary, shadows = found.filter(~shadow), found.filter(shadow)
    notes: list[str] = []
    variant = model = version_id = None
    version, why = None, None
    if primary.height:
        timestamp = primary["timestamp"][0]
        variant, model = primary["variant"][0], primary["model"][0]
        version_id = primary["model_version_id"][0]
        mine = primary.filter(pl.col("model").eq_missing(model))
        if mine.height < primary.height:  # an id of its own, logged again for another model
            others = sorted(set(primary["model"].drop_nulls()) - {model})
            notes.append(
                f"{primary.height - mine.height} more row(s) of this request id were logged "
                f"for {', '.join(others) or 'no model'}; the trace follows {model}, the first "
                "to answer (lw.read_predictions shows them all)"
            )
            primary = mine
        version, why = _version(store, model, version_id, primary)
    else:
        timestamp = shadows["timestamp"][0]
        why = "only shadow rows were logged for this request: its answer's rows are missing"
    if why:
        notes.append(why)
    lineage, aliases, events, promotions = None, (), (), ()
    if version is not None:
        lineage = model_lineage(store, version.uri)
        aliases, events, why = _live_via(store, version, timestamp)
        if why:
            notes.append(why)
        promotions = tuple(promotion_history(store, version.name, version=version.version))
    return PredictionTrace(
        endpoint=endpoint,
        request_id=request_id,
        timestamp=timestamp,
        variant=variant,
        model=model,
        version=version,
        rows=primary.to_pandas(),
        shadows=shadows.to_pandas(),
        lineage=lineage,
        aliases=aliases,
        alias_events=events,
        promotions=promotions,
        notes=tuple(notes),
    )


# -- finding the request ----------------------------------------------------------------------


def _check(store: Any, endpoint: Any, request_id: Any, start: Any, end: Any) -> None:
    if not isinstance(store, Store):
        raise bad_param(_FUNC, "store", "a loopwise.Store", store)
    check_trace_call(endpoint, request_id, start, end)


def check_trace_call(endpoint: Any, request_id: Any, start: Any, end: Any) -> None:
    """The checks of :func:`trace_prediction`'s arguments but the store (the remote client
    makes them too, before asking a server)."""
    check_endpoint(endpoint, _FUNC)
    if not isinstance(request_id, str) or not request_id:
        raise bad_param(_FUNC, "request_id", "a request id (a non-empty str)", request_id)
    for name, value in (("start", start), ("end", end)):
        if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
            raise bad_param(
                _FUNC,
                name,
                "a timezone-aware datetime such as datetime(2024, 5, 1, tzinfo=timezone.utc) "
                "or None",
                value,
            )
    if start is not None and end is not None and end <= start:
        raise bad_param(_FUNC, "end", f"after start ({start.isoformat()})", end)


def _find(
    store: Store, endpoint: str, request_id: str, start: datetime | None, end: datetime | None
) -> pl.DataFrame:
    """The request's rows, shadows included: the key columns of the searched range first,
    then the hour(s) holding the request in full, with their feedback."""
    by_id = start is None and end is None and is_id(request_id)
    if by_id:
        hour, offset = divmod(id_time_ms(request_id), _HOUR_MS)
        neighbour = hour - 1 if offset < _HOUR_MS // 2 else hour + 1  # the nearest one
        start, end = _at(min(hour, neighbour)), _at(max(hour, neighbour) + 1)
    keys = read_predictions_frame(
        store, endpoint, start, end, columns=["request_id"], feedback=False
    )
    hits = keys.filter(pl.col("request_id") == request_id)
    if not hits.height:
        raise NotFound(_not_found(endpoint, request_id, start, end, by_id, keys))
    epoch_us = hits["timestamp"].dt.epoch("us")
    hours = sorted({int(us) // (_HOUR_MS * 1000) for us in epoch_us})
    spans: list[list[int]] = []
    for h in hours:  # consecutive hours are read as one range
        if spans and spans[-1][1] == h:
            spans[-1][1] = h + 1
        else:
            spans.append([h, h + 1])
    labels: Any = True
    if len(spans) > 1:  # the feedback of every later hour, read once for all the spans
        labels = read_feedback(store, endpoint, _at(spans[0][0]))
    frames = [
        read_predictions_frame(store, endpoint, _at(a), _at(b), feedback=labels).filter(
            pl.col("request_id") == request_id
        )
        for a, b in spans
    ]
    found = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    found = found.sort(["timestamp", "row"], maintain_order=True)
    empty = [
        c for c in found.columns if c.startswith("input.") and found[c].null_count() == found.height
    ]
    return found.drop(empty)  # the other requests' features of those hours


def _not_found(
    endpoint: str,
    request_id: str,
    start: datetime | None,
    end: datetime | None,
    by_id: bool,
    keys: pl.DataFrame,
) -> str:
    head = f"request {request_id!r} is not in the prediction log of endpoint {endpoint!r}"
    if by_id:
        return (
            f"{head} in the hours its id was made in and nearest to ({_hour(start)} to "
            f"{_hour(end)} UTC, {keys.height:,} rows searched). If it was logged with a "
            "timestamp of its own (lw.log_predictions(..., timestamp=...)), pass start= "
            "and end= around that time (CLI: --start/--end)."
        )
    if start is None and end is None:
        extent = ""
        if keys.height:
            first, last = keys["timestamp"].min(), keys["timestamp"].max()
            extent = f", from {_iso(first)} to {_iso(last)}"  # type: ignore[arg-type]
        return (
            f"{head} (searched the whole log: {keys.height:,} rows{extent}). Check the id "
            "and the endpoint. It is not a loopwise id, so it carries no time: on a long "
            "log, pass start= and end= (CLI: --start/--end) around the request's time to "
            "read only those hours."
        )
    since = "the beginning" if start is None else _iso(start)
    until = "the end of the log" if end is None else _iso(end)
    return (
        f"{head} between {since} and {until} ({keys.height:,} rows searched). Widen start= "
        "and end= (CLI: --start/--end), or leave them out to search the whole log."
    )


# -- the registry side ------------------------------------------------------------------------


def _version(
    store: Store, label: str | None, version_id: str | None, rows: pl.DataFrame
) -> tuple[ModelVersion | None, str | None]:
    """The registry version behind a logged ``name/version`` label, or why there is none."""
    if label == FALLBACK:
        return None, (
            "answered by the endpoint's fallback (the model flag was off, or the endpoint is "
            "a walking skeleton): no model version is behind this answer"
        )
    if label is None:
        errors = rows["error"].drop_nulls()
        if errors.len():
            return None, f"the request failed ({errors[0]}) before a model answered it"
        return None, "the rows were logged without a model (log_predictions(model=None))"
    name, slash, number = label.rpartition("/")
    if not slash or not number.isdigit():
        return None, f"the logged model {label!r} is not 'name/version', so no version is known"
    uri = f"models:/{name}/{number}"
    try:
        version = get_model_version(store, uri)
    except (NotFound, InvalidReference):
        return None, (
            f"{uri} is not in this store (deleted, or registered in another store); the log "
            f"keeps its label {label!r}"
        )
    if version_id is not None and version.id != version_id:
        return None, (
            f"{uri} in this store (id {version.id}) is not the version that answered (id "
            f"{version_id}): the model was registered again, or the log is another store's"
        )
    return version, None


def _live_via(
    store: Store, version: ModelVersion, at: datetime
) -> tuple[tuple[str, ...], tuple[AliasMove, ...], str | None]:
    """The aliases pointing at ``version`` at ``at``, the moves that put it there, and a
    note when none did (the last move that had, if any)."""
    history = [e for e in alias_history(store, version.name) if e.moved_at <= at]
    last: dict[str, AliasMove] = {}
    for event in history:  # oldest first: the last move of each alias before the request
        last[event.alias] = event
    held = [e for e in last.values() if e.to_version == version.version]
    if held:
        held.sort(key=lambda e: e.moved_at)
        return tuple(e.alias for e in held), tuple(held), None
    earlier = [e for e in history if e.to_version == version.version]
    if not earlier:
        return (
            (),
            (),
            (
                f"no alias pointed at {version.uri} before this request: the endpoint served "
                "it by its version (models:/name/N), not through an alias"
            ),
        )
    event = earlier[-1]
    moved = last[event.alias]
    return (
        (),
        (event,),
        (
            f"@{event.alias} had moved on from {version.uri} to version {moved.to_version} at "
            f"{_iso(moved.moved_at)}, before this request: a server follows its alias within its "
            "poll interval, or the endpoint served this version by its number"
        ),
    )


# -- formatting -------------------------------------------------------------------------------


def _at(hour: int) -> datetime:
    return EPOCH + hour * _HOUR


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _hour(moment: datetime | None) -> str:
    return "?" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:00}"


def _move_text(event: AliasMove) -> str:
    before = "none" if event.from_version is None else f"version {event.from_version}"
    reason = f': "{event.reason}"' if event.reason else " (no reason given)"
    return (
        f"@{event.alias} ({event.kind} from {before} to version {event.to_version}) at "
        f"{_iso(event.moved_at)} by {event.moved_by or '?'}{reason}"
    )


def _git_text(git: Any) -> str:
    if not isinstance(git, dict):
        return "not recorded (not a git work tree)"
    if "error" in git:
        return f"unknown ({git['error']})"
    commit = str(git.get("commit"))[:12] if git.get("commit") else "no commit yet"
    return commit + (" (dirty: uncommitted changes)" if git.get("dirty") else " (clean)")


def _shadow_groups(shadows: pd.DataFrame) -> list[tuple[str, str]]:
    groups = []
    for (variant, model), group in shadows.groupby(["variant", "model"], dropna=False, sort=False):
        errors = [e for e in group["error"] if isinstance(e, str)]
        outcome = (
            f"failed ({errors[0]})" if errors else f"predictions {_column(group, 'prediction')}"
        )
        groups.append((f"{variant} ({model})", outcome))
    return groups


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    return [r[name] for r in _records(frame[[name]])]


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of :meth:`PredictionTrace.to_dict` as a frame, their times as UTC datetimes."""
    import pandas as pd

    frame = pd.DataFrame.from_records(records)
    for name in ("timestamp", "feedback_timestamp"):
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601").astype(
                "datetime64[us, UTC]"
            )
    return frame


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_plain(r) for r in frame.to_dict("records")]


def _plain(value: Any) -> Any:
    """``value`` as JSON-safe Python: NumPy and pandas values unwrapped, NaN/NaT/NA None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if type(value).__name__ in ("NaTType", "NAType"):  # NaT is a datetime too
        return None
    if isinstance(value, datetime):  # pandas.Timestamp too
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return _plain(value.tolist())
    return str(value)
