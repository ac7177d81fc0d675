"""One batch (a model version's rows over the windows of a chunk) into figures.

A *grouping* is the whole window, or one slice spec: every row gets a cell code
``window × labels + label``, and every figure is computed for all cells of a grouping in one
vectorised pass (:mod:`.checks`, :mod:`.drift`). The rows counted:

- ``rows``, ``throughput_rps`` (requests, i.e. rows numbered 0, per second of the window),
  ``error_rate`` (rows with an error / rows), latency percentiles (one value per request):
  every row;
- ``missing.*``, drift, ``schema.*`` and ``prediction.*``: the rows that did not fail;
- ``perf.*``: those with feedback (``labelled``); ``custom.*``: every row.

With fewer than ``min_rows`` such rows in a cell (``labelled`` for performance), its figures
are None; ``rows``, ``labelled`` and ``throughput_rps`` are always given. A slice value
with no row in a window gets no figures at all.

Feedback labels that share no value with the predictions (a model answering 0/1, feedback
in Yes/No) would score every row wrong: no ``perf.*`` is computed for the batch, the other
figures are, and :attr:`BatchFigures.problems` says why (stored with its labelled windows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from loopwise.errors import InvalidInput
from loopwise.evaluation.metrics import LabelMismatch
from loopwise.monitoring.config import Monitor, slice_name
from loopwise.monitoring.engine import checks
from loopwise.monitoring.engine.drift import FeatureProfile, RowBins, bin_cells
from loopwise.monitoring.engine.profile import VersionProfile, build_spec
from loopwise.monitoring.engine.windows import Batch, slice_columns
from loopwise.monitoring.results import OVERALL

Values = dict[tuple[str, str], float | None]
_LOG_SLICE_COLUMNS = ("variant",)  # slice names meaning a log column, not an input


@dataclass
class Grouping:
    """Cells of one grouping: ``cells[i]`` is row i's cell, ``subsets[c]`` cell c's
    reference subset (-1: the reference has no such slice value)."""

    name: str | None
    labels: tuple[str, ...]
    cells: np.ndarray
    n_cells: int
    subsets: np.ndarray

    def key(self, label: int) -> str:
        return OVERALL if self.name is None else f"{self.name}={self.labels[label]}"


class BatchFigures:
    """Computes every figure of one batch; :meth:`values` gives them per window."""

    def __init__(self, batch: Batch, profile: VersionProfile, monitor: Monitor) -> None:
        self.batch, self.profile, self.monitor = batch, profile, monitor
        frame = batch.frame
        self.frame = frame
        self.windows = len(batch.spans)
        self.seconds = np.array([s.seconds for s in batch.spans])
        self.ok = _mask(frame["error"].is_null()) if "error" in frame.columns else _all(frame)
        self.pred = frame["prediction"] if "prediction" in frame.columns else None
        self.has_pred = self.ok & (
            _mask(self.pred.is_not_null()) if self.pred is not None else False
        )
        labels = frame["label"] if "label" in frame.columns else None
        self.labels = labels
        self.labelled = self.has_pred & (
            _mask(labels.is_not_null()) if labels is not None else False
        )
        self.proba = (
            checks.probability_matrix(frame["probabilities"])
            if "probabilities" in frame.columns
            else None
        )
        self.outputs = None
        if self.pred is not None:
            self.outputs = checks.read_outputs(profile.spec, self.pred, self.proba)
        self.features = list(monitor.features or [
            c.removeprefix("input.") for c in frame.columns if c.startswith("input.")
        ])  # fmt: skip
        self._prediction_bins: RowBins | None = None
        self._performance: checks.Performance | bool | None = False
        self.problems: list[str] = []  # what kept figures of the batch from being computed

    # -- groupings ----------------------------------------------------------------------------

    def groupings(self) -> list[Grouping]:
        w = self.batch.window.astype(np.intp)
        out = [Grouping(None, ("",), w, self.windows, np.zeros(self.windows, dtype=np.intp))]
        if not self.monitor.slices:
            return out
        from loopwise.evaluation.slicing import build_slices

        sliced = self._slice_frame()
        layout = self.profile.layout
        for spec in self.monitor.slices:
            name = slice_name(spec)
            groups = build_slices(sliced, [build_spec(spec)])[0]
            labels = groups.labels
            cells = w * len(labels) + groups.codes
            if layout is None:
                subset = np.full(len(labels), -1)
            elif name in layout.labels:
                subset = np.array([layout.labels[name].get(label, -1) for label in labels])
            else:
                subset = np.zeros(len(labels), dtype=np.intp)  # the whole reference
            subsets = np.tile(subset, self.windows).astype(np.intp)
            out.append(Grouping(name, labels, cells, self.windows * len(labels), subsets))
        return out

    def _slice_frame(self) -> pl.DataFrame:
        frame = self.frame
        exprs = []
        for column in slice_columns(self.monitor.slices):
            source = column if column in _LOG_SLICE_COLUMNS else f"input.{column}"
            if source not in frame.columns:
                inputs = [c.removeprefix("input.") for c in frame.columns if c.startswith("input.")]
                raise InvalidInput(
                    f"monitor {self.monitor.name!r}: slice column {column!r} is not an input of "
                    f"endpoint {self.monitor.endpoint!r} (inputs: {', '.join(inputs[:20])}); "
                    "fix slices."
                )
            exprs.append(pl.col(source).alias(column))
        return frame.select(exprs)

    # -- figures ------------------------------------------------------------------------------

    def figures(self, g: Grouping) -> dict[str, np.ndarray]:
        """Every figure of every cell of a grouping but the per-feature ones (NaN: none)."""
        n, cells, min_rows = g.n_cells, g.cells, self.monitor.min_rows
        rows = checks.count(cells, n)
        labelled = checks.count(cells, n, self.labelled)
        out: dict[str, np.ndarray] = {"rows": rows, "labelled": labelled}
        enough = checks.count(cells, n, self.ok) >= min_rows
        if self.monitor.checks.operational:
            out.update(self._operational(g, rows))
        if self.outputs is not None:
            out.update(self._predictions(g, enough))
        if self.monitor.checks.performance_enabled and self.labelled.any():
            perf = self._perf()
            if perf is not None:
                for metric, values in perf.by_cell(cells[self.labelled], n).items():
                    out[metric] = np.where(labelled >= min_rows, values, np.nan)
        for name, check in self.monitor.checks.custom.items():
            if isinstance(check, str):
                values = checks.custom_expression(self.frame, cells, n, name, check)
            else:
                values = checks.custom_function(self.frame, cells, n, name, check)
            out[f"custom.{name}"] = np.where(rows >= min_rows, values, np.nan)
        return out

    def feature_figures(
        self, groupings: list[Grouping], found: list[dict[str, np.ndarray]]
    ) -> None:
        """``missing.*`` and drift of every feature, added to each grouping's figures; one
        feature at a time (its rows are binned once for every grouping, then dropped)."""
        min_rows = self.monitor.min_rows
        enough = [checks.count(g.cells, g.n_cells, self.ok) >= min_rows for g in groupings]
        drifting = self.monitor.checks.feature_drift.enabled
        flags: list[list[np.ndarray]] = [[] for _ in groupings]
        for f in self.features:
            column = f"input.{f}"
            if column not in self.frame.columns:
                continue
            values = self.frame[column]
            missing = _missing(values)
            for g, out, ok in zip(groupings, found, enough, strict=True):
                ok_rows = checks.count(g.cells, g.n_cells, self.ok)
                share = checks.ratio(checks.total(missing, g.cells, g.n_cells, self.ok), ok_rows)
                out[f"missing.{f}"] = np.where(ok, share, np.nan)
            profile = self.profile.feature(f, self.monitor) if drifting else None
            if profile is None:
                continue
            rows = profile.bin_rows(values)
            for i, (g, out, ok) in enumerate(zip(groupings, found, enough, strict=True)):
                stat, drifted = self._drift_of(profile, rows, g, self.ok, ok)
                out[f"drift.{f}"], out[f"drifted.{f}"] = stat, drifted
                flags[i].append(drifted)
        for out, found_flags in zip(found, flags, strict=True):
            if found_flags:
                stacked = np.vstack(found_flags)
                known = ~np.isnan(stacked)
                with np.errstate(divide="ignore", invalid="ignore"):
                    out["drift.share"] = np.where(
                        known.any(axis=0), np.nansum(stacked, axis=0) / known.sum(axis=0), np.nan
                    )

    def _operational(self, g: Grouping, rows: np.ndarray) -> dict[str, np.ndarray]:
        frame, n, cells = self.frame, g.n_cells, g.cells
        few = rows < self.monitor.min_rows
        out = {
            "error_rate": np.where(
                few, np.nan, checks.ratio(rows - checks.count(cells, n, self.ok), rows)
            )
        }
        first = _mask(frame["row"] == 0) if "row" in frame.columns else _all(frame)
        seconds = np.repeat(self.seconds, len(g.labels))
        out["throughput_rps"] = checks.ratio(checks.count(cells, n, first), seconds)
        if "latency_ms" in frame.columns:
            latency = frame["latency_ms"].cast(pl.Float64, strict=False).to_numpy()
            mask = first & np.isfinite(latency)
            for name, values in checks.quantiles(
                latency, cells, n, mask, checks.LATENCY_QUANTILES
            ).items():
                out[name] = np.where(few, np.nan, values)
        return out

    def _drift_of(
        self,
        profile: FeatureProfile,
        rows: RowBins,
        g: Grouping,
        mask: np.ndarray,
        enough: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        binned = bin_cells(rows, g.cells, g.n_cells, mask)
        subsets = np.maximum(g.subsets, 0)
        stat, p_value, _ = profile.compare(binned, subsets)
        valid = enough & (g.subsets >= 0) & (profile.ref_n[subsets] >= self.monitor.min_rows)
        return np.where(valid, stat, np.nan), np.where(
            valid, profile.drifted(stat, p_value), np.nan
        )

    def _predictions(self, g: Grouping, enough: np.ndarray) -> dict[str, np.ndarray]:
        assert self.outputs is not None
        assert self.pred is not None
        n, cells = g.n_cells, g.cells
        out: dict[str, np.ndarray] = {}
        outputs = self.outputs
        source = outputs.score if outputs.score is not None else outputs.value
        if source is not None:
            mean, std = checks.mean_std(source, cells, n, self.has_pred & np.isfinite(source))
            out["prediction.mean"] = np.where(enough, mean, np.nan)
            out["prediction.std"] = np.where(enough, std, np.nan)
        if outputs.positive is not None:
            mask = self.has_pred & np.isfinite(outputs.positive)
            rate = checks.ratio(
                checks.total(outputs.positive, cells, n, mask), checks.count(cells, n, mask)
            )
            out["prediction.positive_rate"] = np.where(enough, rate, np.nan)
        if not self.monitor.checks.prediction_drift.enabled:
            return out
        profile, values = self.profile.prediction, self.pred
        if outputs.score is not None and self.profile.score is not None:
            profile, values = self.profile.score, pl.Series("score", outputs.score)
        if profile is not None:
            if self._prediction_bins is None:  # binned once for every grouping
                self._prediction_bins = profile.bin_rows(values)
            rows = self._prediction_bins
            stat, drifted = self._drift_of(profile, rows, g, self.has_pred, enough)
            out["prediction.drift"], out["prediction.drifted"] = stat, drifted
        return out

    def _perf(self) -> checks.Performance | None:
        if self._performance is False:
            assert self.pred is not None
            assert self.labels is not None
            mask = pl.Series(self.labelled)
            proba = None if self.proba is None else self.proba[self.labelled]
            try:
                self._performance = checks.Performance(
                    self.profile.spec,
                    self.labels.filter(mask),
                    self.pred.filter(mask),
                    proba,
                    self.profile.metrics,
                )
            except LabelMismatch as e:
                self._performance = None
                self.problems.append(checks.feedback_problem(e, self.batch.model))
        return self._performance or None

    def schema_counts(self) -> dict[int, tuple[int, int]]:
        """(errors, warnings) of validating each window's inputs against the schema."""
        from loopwise.data.validation import validate

        schema = self.profile.schema
        if schema is None or not self.monitor.checks.schema:
            return {}
        names = [c for c in schema.columns if f"input.{c}" in self.frame.columns]
        inputs = self.frame.select(
            pl.Series("_w", self.batch.window), *(pl.col(f"input.{c}").alias(c) for c in names)
        ).filter(pl.Series(self.ok))
        out = {}
        for part in inputs.partition_by("_w", maintain_order=True):
            if part.height < self.monitor.min_rows:
                continue
            report = validate(part.drop("_w"), schema, expect_target=False)
            out[int(part["_w"][0])] = (len(report.errors), len(report.warnings))
        return out

    def values(self) -> dict[int, tuple[int, int, Values]]:
        """(rows, labelled, figures) per window with rows."""
        per_window: dict[int, Values] = {}
        totals: dict[int, tuple[int, int]] = {}
        groupings = self.groupings()
        every = [self.figures(g) for g in groupings]
        self.feature_figures(groupings, every)
        for g, found in zip(groupings, every, strict=True):
            width = len(g.labels)
            rows = found["rows"]
            for cell in np.flatnonzero(rows > 0):
                window, label = divmod(int(cell), width)
                key = g.key(label)
                target = per_window.setdefault(window, {})
                for metric, array in found.items():
                    value = float(array[cell])
                    target[(key, metric)] = value if np.isfinite(value) else None
                if g.name is None:
                    totals[window] = (int(rows[cell]), int(found["labelled"][cell]))
        for window, (errors, warnings) in self.schema_counts().items():
            per_window[window][(OVERALL, "schema.errors")] = float(errors)
            per_window[window][(OVERALL, "schema.warnings")] = float(warnings)
        return {w: (*totals[w], per_window[w]) for w in per_window}


def _mask(series: pl.Series) -> np.ndarray:
    return series.fill_null(False).to_numpy().astype(bool, copy=False)


def _all(frame: pl.DataFrame) -> np.ndarray:
    return np.ones(frame.height, dtype=bool)


def _missing(series: pl.Series) -> np.ndarray:
    missing = series.is_null()
    if series.dtype.is_float():
        missing = missing | series.is_nan().fill_null(True)
    return missing.to_numpy().astype(np.float64)
