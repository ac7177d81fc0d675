"""Monitoring: one loopwise monitor pass over a day of logged predictions against the same
windows computed with Evidently reports, one per window.

One figure (see bench/README.md), in seconds:

``monitor_pass_s``: ``run_monitor(store, monitor, start, end)`` over 24 hourly windows of
1,000,000 logged predictions (100,000 with --quick) x 20 features (16 floats, 4 text
categoricals), with feedback labels for half of the rows: feature drift, missing rates,
schema, prediction drift, performance from the feedback and operational figures, stored in
the store. Against it: for each of the 24 windows, an Evidently 0.7 ``Report`` with
``DataDriftPreset`` over the 20 features and the prediction, of the window's rows against
the reference, plus a classification report (accuracy, precision, recall, F1) of the
window's labelled rows.

The stream is generated once and logged with ``log_predictions`` / ``log_feedback`` into a
fresh SQLite store, with the reference (100,000 rows; 20,000 with --quick) logged as a
dataset (none of it timed); the same rows are written as Parquet for Evidently. Each tool
runs in a fresh process of its own. loopwise's time includes reading the prediction log and
the feedback from its store (Parquet part files) and storing the results; Evidently's does
not include reading its Parquet files, converting them to pandas or splitting them into
windows. Evidently 0.7 does not import under pandas 3: it runs with the interpreter of
``.venv-evidently`` (``--evidently-python``) and is skipped with a note when that is missing.

    python bench/monitoring.py [--quick] [--workdir DIR] [--evidently-python PATH]
        [--evidently-windows N] [--skip-evidently]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    Results,
    exit_code,
    fmt,
    make_parser,
    measure,
    progress,
    timed,
    work_folder,
)

FIGURES = ("monitor_pass_s",)
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EVIDENTLY_PYTHON = ROOT / ".venv-evidently" / "bin" / "python"
CHILD_FLAG = "--child"  # internal: run one tool's measurement (see child_main)
CHILD_PREFIX = "CHILD "

FULL_ROWS, QUICK_ROWS = 1_000_000, 100_000
FULL_REFERENCE, QUICK_REFERENCE = 100_000, 20_000
WINDOWS = 24  # hourly windows
LOOPWISE_RUNS = 3  # best of 3
QUICK_EVIDENTLY_WINDOWS = 6  # --quick: time 6 Evidently windows (about 4 s each), extrapolate
EVIDENTLY_BUDGET_S = 300.0  # full mode: stop timing Evidently windows after this, extrapolate

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=30)  # every window has closed
ENDPOINT = "credit-risk"
FLOATS = tuple(f"f{j}" for j in range(16))
CATEGORIES = {"c0": 5, "c1": 8, "c2": 12, "c3": 20}  # levels per categorical column
FEATURES = (*FLOATS, *CATEGORIES)
NULL_SHARE = {"f14": 0.02, "f15": 0.01, "c3": 0.01}
DRIFT_FROM = 16  # the drift starts in window 16 (of 0-23)
DRIFTED = ("f0", "f3", "f7", "c1")  # what drift() moves from DRIFT_FROM on
LABELLED_SHARE = 0.5


# -- the data -------------------------------------------------------------------------------


def features(rows: int, rng):
    """``rows`` x 20 features: 16 floats (normal, lognormal, uniform), 4 categoricals."""
    import numpy as np
    import polars as pl

    columns: dict[str, Any] = {}
    for j, name in enumerate(FLOATS):
        if j % 3 == 0:
            columns[name] = rng.normal(10.0 * j, 1.0 + j, rows)
        elif j % 3 == 1:
            columns[name] = rng.lognormal(1.0 + j / 10, 0.5, rows)
        else:
            columns[name] = rng.uniform(-j, 3.0 * j, rows)
    frame = pl.DataFrame(columns)
    for name, levels in CATEGORIES.items():
        weights = np.linspace(1.0, 3.0, levels)
        frame = frame.with_columns(
            _labels(name, rng.choice(levels, rows, p=weights / weights.sum()))
        )
    return frame


def _labels(name: str, codes: Any):
    import polars as pl

    levels = pl.Series([f"{name}_{chr(97 + i)}" for i in range(CATEGORIES[name])])
    return levels.gather(pl.Series(codes)).alias(name)


def with_nulls(frame, rng):
    import polars as pl

    return frame.with_columns(
        pl.when(pl.Series(rng.random(frame.height) < share)).then(None).otherwise(pl.col(name))
        .alias(name)
        for name, share in NULL_SHARE.items()
    )  # fmt: skip


def drift(frame, moved, rng):
    """Move f0, f3, f7 and the mix of c1 in the rows where ``moved``."""
    import numpy as np
    import polars as pl

    mix = np.array([0.4, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    m = pl.Series(moved)
    new_c1 = _labels("c1", rng.choice(len(mix), frame.height, p=mix))
    return frame.with_columns(
        pl.when(m).then(pl.col("f0") + 0.5).otherwise(pl.col("f0")).alias("f0"),  # +0.5 std
        pl.when(m).then(pl.col("f3") + 1.6).otherwise(pl.col("f3")).alias("f3"),  # +0.4 std
        pl.when(m).then(pl.col("f7") * 1.5).otherwise(pl.col("f7")).alias("f7"),
        pl.when(m).then(new_c1).otherwise(pl.col("c1")).alias("c1"),
    )


def model_outputs(frame, rng):
    """A fixed logistic model's predicted class and the true label (the model is right
    about 80% of the time on the reference distribution)."""
    import numpy as np

    z = (
        (frame["f0"].to_numpy() - 0.0) * 1.2
        - (frame["f3"].to_numpy() - 30.0) / 4.0
        + np.log(frame["f1"].to_numpy()) - 1.1
        + (frame["c1"] == "c1_a").to_numpy() * 0.8
    )  # fmt: skip
    y = (z + rng.normal(0.0, 1.0, frame.height) > 0).astype(np.int64)
    prediction = (z > 0).astype(np.int64)
    return prediction, y


def prepare(folder: Path, rows: int, reference_rows: int) -> dict[str, Any]:
    """Generate the stream and the reference, log them into a fresh store, write Parquet."""
    import numpy as np
    import polars as pl

    from loopwise.config import load_settings
    from loopwise.data.datasets import log_dataset
    from loopwise.predictions.log import log_feedback, log_predictions
    from loopwise.store import Store

    start = time.perf_counter()
    rng = np.random.default_rng(7)
    seconds = np.sort(rng.uniform(0, WINDOWS * 3600, rows))
    hour = (seconds // 3600).astype(np.int64)
    frame = with_nulls(drift(features(rows, rng), hour >= DRIFT_FROM, rng), rng)
    prediction, y = model_outputs(frame, rng)
    stamps = (T0.timestamp() * 1e6 + seconds * 1e6).astype(np.int64)
    stream = frame.with_columns(
        (pl.lit("r") + pl.int_range(rows).cast(pl.String)).alias("request_id"),
        pl.Series("timestamp", stamps).cast(pl.Datetime("us", "UTC")),
        pl.Series("prediction", prediction),
        pl.Series("latency_ms", rng.gamma(2.0, 5.0, rows)),
    )
    labelled = rng.random(rows) < LABELLED_SHARE
    ref_frame = with_nulls(features(reference_rows, rng), rng)
    ref_prediction, ref_y = model_outputs(ref_frame, rng)
    reference = ref_frame.with_columns(
        pl.Series("prediction", ref_prediction), pl.Series("y", ref_y)
    )

    store_dir = folder / "loopwise"
    store_dir.mkdir()
    store = Store(
        settings=load_settings(
            store_url=f"sqlite:///{store_dir}/lw.db", artifacts_url=str(store_dir / "artifacts")
        )
    )
    log_predictions(store, ENDPOINT, stream, model="credit-risk/1")
    log_feedback(
        store,
        ENDPOINT,
        pl.DataFrame({"request_id": stream["request_id"].filter(labelled), "label": y[labelled]}),
    )
    version = log_dataset(store, reference, name="credit-risk-reference")
    store.db.engine.dispose()

    # The same rows for Evidently: features, prediction, the window and the label (null
    # where no feedback came).
    stream.select(*FEATURES, "prediction").with_columns(
        pl.Series("window", hour), pl.Series("y", np.where(labelled, y, -1)).replace(-1, None)
    ).write_parquet(folder / "stream.parquet")
    reference.write_parquet(folder / "reference.parquet")
    progress(
        f"data: {rows:,} predictions x {len(FEATURES)} features in {WINDOWS} windows, "
        f"{int(labelled.sum()):,} labelled, reference {reference_rows:,} rows; logged and "
        f"written in {time.perf_counter() - start:.1f}s"
    )
    return {
        "store_url": f"sqlite:///{store_dir}/lw.db",
        "artifacts_url": str(store_dir / "artifacts"),
        "reference": f"datasets:/{version.name}/{version.version}",
        "labelled": int(labelled.sum()),
    }


# -- one tool in a fresh process ------------------------------------------------------------


def child_main(spec: dict[str, Any]) -> int:
    warnings.filterwarnings("ignore")
    out = (op_loopwise if spec["op"] == "loopwise" else op_evidently)(spec)
    print(CHILD_PREFIX + json.dumps(out), flush=True)
    return 0


def monitor_config(reference: str) -> dict[str, Any]:
    return {
        "endpoint": ENDPOINT,
        "window": "1h",
        "reference": reference,
        "target": "y",
        "task": "classification",
        "positive_label": 1,
        "features": list(FEATURES),
        "checks": {
            "schema": True,
            "feature_drift": True,
            "prediction_drift": True,
            "performance": ["accuracy", "precision", "recall", "f1"],
            "operational": True,
        },
    }


def op_loopwise(spec: dict[str, Any]) -> dict[str, Any]:
    from loopwise.config import load_settings
    from loopwise.monitoring.config import Monitor
    from loopwise.monitoring.engine.runner import run_monitor
    from loopwise.store import Store

    store = Store(
        settings=load_settings(store_url=spec["store_url"], artifacts_url=spec["artifacts_url"])
    )
    monitor = Monitor.from_dict(monitor_config(spec["reference"]))
    end = T0 + timedelta(hours=WINDOWS)

    def run():
        return run_monitor(store, monitor, T0, end, now=NOW)

    m = measure(run, repeat=spec["runs"], warmup_below=0.0)
    results = m.value
    windows = []
    for r in results:
        windows.append(
            {
                "index": int((r.start - T0) / timedelta(hours=1)),
                "rows": r.rows,
                "labelled": r.labelled,
                "drifted": [c for c in FEATURES if r.value(f"drifted.{c}") == 1.0],
                "prediction_drifted": r.value("prediction.drifted"),
                "accuracy": r.value("perf.accuracy"),
                "f1": r.value("perf.f1"),
                "missing_f14": r.value("missing.f14"),
                "metrics": len(r.values),
            }
        )
    return {
        "seconds": min(m.times),
        "times": m.times,
        "peak_mb": m.peak_mb,
        "memory_method": m.memory_method,
        "windows": windows,
    }


def op_evidently(spec: dict[str, Any]) -> dict[str, Any]:
    """Evidently 0.7, per window: ``Report([DataDriftPreset(columns)], include_tests=True)``
    of the window against the reference, and a classification report of its labelled rows."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    import pandas as pd
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import Accuracy, F1Score, Precision, Recall
    from evidently.presets import DataDriftPreset

    folder = Path(spec["folder"])
    stream = pd.read_parquet(folder / "stream.parquet")
    reference = pd.read_parquet(folder / "reference.parquet")
    columns = [*FEATURES, "prediction"]
    windows = [w.drop(columns="window") for _, w in stream.groupby("window", sort=True)]
    definition = DataDefinition(
        numerical_columns=list(FLOATS),
        categorical_columns=[*CATEGORIES],
        classification=[BinaryClassification(target="y", prediction_labels="prediction")],
    )
    ref_labelled = reference[[*FEATURES, "prediction", "y"]]
    budget = spec.get("budget_s")
    limit = spec.get("windows") or len(windows)

    def one(window: pd.DataFrame) -> dict[str, Any]:
        drift = Report([DataDriftPreset(columns=columns)], include_tests=True).run(
            window[columns], reference[columns]
        )
        labelled = window[window["y"].notna()].astype({"y": "int64"})
        quality = Report([Accuracy(), Precision(), Recall(), F1Score()]).run(
            Dataset.from_pandas(labelled, data_definition=definition),
            Dataset.from_pandas(ref_labelled, data_definition=definition),
        )
        return {"drift": drift, "quality": quality}

    one(windows[0])  # warm-up (imports, caches): not timed
    times, info = [], []
    # spread over the day (0, 4, 8, ..., 20, 2, 6, ...), so a partial run samples stable
    # and drifted windows alike
    order = [i for start in (0, 2, 1, 3) for i in range(start, len(windows), 4)]
    for done, i in enumerate(order[:limit], 1):
        window = windows[i]
        seconds, out = timed(lambda window=window: one(window))
        times.append(seconds)
        flagged = [
            t.metric_config.params["column"]
            for t in out["drift"].tests_results
            if t.id == "drift" and str(getattr(t.status, "value", t.status)) == "FAIL"
        ]
        accuracy = None
        for metric in out["quality"].dict()["metrics"]:
            if "Accuracy" in metric.get("config", {}).get("type", ""):
                accuracy = metric["value"]
        info.append({"index": i, "drifted": [c for c in columns if c in flagged],
                     "accuracy": accuracy})  # fmt: skip
        if budget is not None and sum(times) > budget and done < len(windows):
            break
    measured = sum(times)
    return {
        "seconds": measured / len(times) * len(windows),
        "measured_s": measured,
        "windows_timed": len(times),
        "windows_total": len(windows),
        "times": times,
        "windows": info,
    }


def run_child(python: Path, spec: dict[str, Any], label: str) -> dict[str, Any] | None:
    progress(f"{label} in a fresh process ...")
    seconds, proc = timed(
        lambda: subprocess.run(
            [str(python), str(Path(__file__).resolve()), CHILD_FLAG, json.dumps(spec)],
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
    )
    lines = [s for s in proc.stdout.splitlines() if s.startswith(CHILD_PREFIX)]
    if proc.returncode != 0 or not lines:
        print(f"CHECK FAILED: {label} failed (exit {proc.returncode})", file=sys.stderr)
        return None
    progress(f"{label}: process {seconds:.1f}s")
    return json.loads(lines[-1][len(CHILD_PREFIX) :])


# -- the parent -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD_FLAG]:
        return child_main(json.loads(argv[1]))
    parser = make_parser(__doc__.splitlines()[0], FIGURES)
    parser.add_argument(
        "--evidently-python",
        type=Path,
        default=DEFAULT_EVIDENTLY_PYTHON,
        metavar="PATH",
        help="interpreter with Evidently 0.7 and pandas < 3 (default: .venv-evidently/bin/python)",
    )
    parser.add_argument(
        "--evidently-windows",
        type=int,
        metavar="N",
        help="time N of the 24 Evidently windows (spread over the day) and extrapolate "
        f"(default: {QUICK_EVIDENTLY_WINDOWS} with --quick; in full mode all, stopping after "
        f"{EVIDENTLY_BUDGET_S:.0f} s to extrapolate)",
    )
    parser.add_argument(
        "--skip-evidently", action="store_true", help="time loopwise only (ratio null)"
    )
    args = parser.parse_args(argv)
    rows = QUICK_ROWS if args.quick else FULL_ROWS
    reference_rows = QUICK_REFERENCE if args.quick else FULL_REFERENCE
    mode = "quick" if args.quick else "full"
    print(
        f"bench monitoring ({mode}, {rows:,} predictions x {len(FEATURES)} features, "
        f"{WINDOWS} hourly windows, feedback for {LABELLED_SHARE:.0%}): monitor_pass_s",
        flush=True,
    )
    failed: list[str] = []
    results = Results("monitoring")
    with work_folder(args.workdir, "bench-monitoring-") as folder:
        spec = prepare(folder, rows, reference_rows)
        lw = run_child(
            Path(sys.executable), {"op": "loopwise", "runs": LOOPWISE_RUNS, **spec}, "loopwise"
        )
        ev = None
        if args.skip_evidently:
            print("NOTE: Evidently skipped (--skip-evidently).", flush=True)
        elif not args.evidently_python.exists():
            print(
                f"NOTE: Evidently skipped: no interpreter at {args.evidently_python}. Create it "
                "with `make .venv-evidently/.evidently-installed` (Evidently 0.7.23, pandas < 3), "
                "or pass --evidently-python PATH.",
                flush=True,
            )
        else:
            ev_spec: dict[str, Any] = {"op": "evidently", "folder": str(folder)}
            ev_spec["windows"] = args.evidently_windows
            if args.quick and args.evidently_windows is None:
                ev_spec["windows"] = QUICK_EVIDENTLY_WINDOWS
            if not args.quick and args.evidently_windows is None:
                ev_spec["budget_s"] = EVIDENTLY_BUDGET_S
            ev = run_child(args.evidently_python, ev_spec, "evidently")
            if ev is None:
                failed.append("the Evidently process failed")
        if lw is None:
            failed.append("the loopwise process failed")
            return exit_code(failed)
        notes, extra = describe(lw, ev, rows, spec, failed)
        results.add_against(
            "monitor_pass_s",
            lw["seconds"],
            "evidently",
            None if ev is None else ev["seconds"],
            higher_is_better=False,
            unit="s",
            note="\n    ".join(notes),
            extra=extra,
        )
        results.print_results()
    return exit_code(failed)


def describe(lw, ev, rows: int, spec, failed: list[str]) -> tuple[list[str], dict[str, Any]]:
    windows = lw["windows"]
    runs = "/".join(f"{t:.2f}" for t in lw["times"])
    notes = [
        f"loopwise: run_monitor over {len(windows)} windows ({sum(w['rows'] for w in windows):,} "
        f"rows, {sum(w['labelled'] for w in windows):,} labelled, "
        f"{windows[0]['metrics'] if windows else 0} figures a window), best of runs {runs} s, "
        f"peak memory +{fmt(lw['peak_mb'] or 0)} MiB ({lw['memory_method']}); includes reading "
        "the log from the store and storing the results"
    ]
    target = 10.0
    notes.append(
        f"target: under {target:.0f} s for 1,000,000 rows: "
        + ("n/a (quick)" if rows != FULL_ROWS else ("met" if lw["seconds"] < target else "NOT met"))
    )
    extra: dict[str, Any] = {
        "rows": rows,
        "windows": WINDOWS,
        "features": len(FEATURES),
        "labelled": spec["labelled"],
        "loopwise_runs_s": [round(t, 3) for t in lw["times"]],
        "loopwise_peak_mb": None if lw["peak_mb"] is None else round(lw["peak_mb"], 1),
        "evidently_windows_timed": None,
        "evidently_extrapolated": None,
        "parquet_read_counted": False,
    }
    # loopwise finds the drift where it starts, in every drifted column, and not before.
    late = [w for w in windows if w["index"] >= DRIFT_FROM]
    early = [w for w in windows if w["index"] < DRIFT_FROM]
    missed = [(w["index"], c) for w in late for c in DRIFTED if c not in w["drifted"]]
    false = sum(len(w["drifted"]) for w in early)
    if missed:
        failed.append(f"loopwise missed the drift in (window, column) {missed}")
    if len(windows) != WINDOWS:
        failed.append(f"loopwise returned {len(windows)} windows, want {WINDOWS}")
    notes.append(
        f"drift made in {list(DRIFTED)} from window {DRIFT_FROM}: loopwise flags them in "
        f"{len(late) - len({i for i, _ in missed})}/{len(late)} drifted windows; "
        f"{false} column flag(s) in the {len(early)} stable windows"
    )
    if ev is not None:
        extrapolated = ev["windows_timed"] < ev["windows_total"]
        extra["evidently_windows_timed"] = ev["windows_timed"]
        extra["evidently_extrapolated"] = extrapolated
        extra["evidently_measured_s"] = round(ev["measured_s"], 3)
        per = ev["measured_s"] / ev["windows_timed"]
        notes.append(
            f"evidently: DataDriftPreset (21 columns) + Accuracy/Precision/Recall/F1 of the "
            f"labelled rows, one Report each per window, {per:.2f} s a window; "
            + (
                f"EXTRAPOLATED from {ev['windows_timed']} of {ev['windows_total']} windows "
                f"({ev['measured_s']:.1f} s measured)"
                if extrapolated
                else f"all {ev['windows_total']} windows timed"
            )
            + "; Parquet read and window split not counted"
        )
        by_index = {w["index"]: w for w in windows}
        agree = sum(
            sorted(by_index[e["index"]]["drifted"])
            == sorted(c for c in e["drifted"] if c != "prediction")
            for e in ev["windows"]
            if e["index"] in by_index
        )
        ev_flags = sorted({c for e in ev["windows"] for c in e["drifted"]})
        notes.append(
            f"same drifted feature set in {agree}/{len(ev['windows'])} timed windows; "
            f"columns Evidently ever flags: {ev_flags}"
        )
        extra["same_drifted_windows"] = agree
    return notes, extra


if __name__ == "__main__":
    sys.exit(main())
