"""Registry and evaluation: loopwise against MLflow and a scikit-learn loop, same model.

Three figures (see bench/README.md):

1. ``evaluate_slices_s``: ``evaluate`` of a binary classifier overall and on 50 slices of
   1,000,000 rows (100,000 with --quick), against the naive loop of scikit-learn metrics
   per slice; printed with ``evaluate_vs_mlflow_s``, against ``mlflow.models.evaluate``
   (which has no slices: its overall evaluation is timed).
2. ``load_model_ms``: a warm ``load_model("models:/credit-risk@champion")`` against
   ``mlflow.sklearn.load_model`` of the same URI; cold loads (first call, new process) in
   the human line.
3. ``registry_query_ms``: ``version_at`` and ``model_lineage`` on a registry of 1,000
   versions (200 with --quick) with 300 alias moves, against MLflow's alias and
   version -> run lookups.

Both tools run in this one process (cold loads in fresh ones), each on a fresh SQLite
database and artifact folder under one parent. Setup (data, fitting, registering) is not
timed, only the operation.

    python bench/registry.py [--quick] [--only NAME] [--workdir DIR]
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    Results,
    exit_code,
    fmt,
    make_parser,
    measure,
    median_ms,
    median_ms_over,
    progress,
    run_figures,
    timed,
    work_folder,
)

FIGURES = ("evaluate_slices_s", "load_model_ms", "registry_query_ms")
CHILD_FLAG = "--child"  # internal: one cold load in a fresh process (see child_main)
CHILD_PREFIX = "CHILD "

MODEL = "credit-risk"  # figures 1 and 2
HISTORY_MODEL = "credit-risk-history"  # figure 3: the model with many versions
ALIAS = "champion"
TARGET = "y"
FIT_ROWS = 20_000  # the LogisticRegression is fitted on a sample of this many rows
NUMERIC = [*(f"x{j}" for j in range(8)), "age"]  # the model's features
REGIONS = 10
SEGMENTS = 20
AGE_EDGES = list(range(18, 99, 4))  # 20 bins of 4 years over ages 18..97
SLICES = ["region", "segment", ("age", AGE_EDGES)]
N_SLICES = REGIONS + SEGMENTS + len(AGE_EDGES) - 1  # 50
REPEAT = 3  # timed runs of an evaluation (median)
WARMUP_BELOW_S = 10.0  # a first evaluation faster than this is a warm-up, not timed
MLFLOW_SINGLE_ABOVE_S = 30.0  # one mlflow.models.evaluate run when it takes longer
LOADS = 50  # warm loads timed (median)
QUERIES = 100  # random registry queries timed per kind (median)
PARAMS = 10  # params per training run (figure 3)
METRICS = 5  # metrics per training run (figure 3)
TARGETS = {"evaluate_slices_s": 5.0, "load_model_ms": 50.0, "registry_query_ms": 10.0}


@dataclass(frozen=True)
class Sizes:
    rows: int  # figure 1: rows evaluated
    versions: int  # figure 3: versions of one model
    moves: int  # figure 3: alias moves


FULL = Sizes(1_000_000, 1_000, 300)
QUICK = Sizes(100_000, 200, 300)


# -- the data and the model -------------------------------------------------------------------


def make_frame(rows: int, seed: int):
    """``rows`` credit applicants: 8 normal features, age 18-97, a region (10 values) and
    a segment (20 values), and a binary label ``y`` from a logistic model of them.

    The model sees the numeric features only; region and segment shift the log-odds
    (unseen by the model), so the slices differ in quality as real ones do.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (rows, 8))
    age = rng.integers(18, 98, rows)
    region = rng.integers(0, REGIONS, rows)
    segment = rng.integers(0, SEGMENTS, rows)
    effects = np.random.default_rng(7)  # the same slice effects in every frame
    region_shift = effects.normal(0.0, 0.6, REGIONS)
    segment_shift = effects.normal(0.0, 0.4, SEGMENTS)
    weights = np.array([1.0, -0.8, 0.6, 0.5, -0.4, 0.3, 0.2, 0.1])
    logit = x @ weights + (age - 58) / 25 + region_shift[region] + segment_shift[segment]
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    columns: dict[str, Any] = {f"x{j}": x[:, j] for j in range(8)}
    columns["age"] = age
    columns["region"] = np.array([f"region-{i:02d}" for i in range(REGIONS)])[region]
    columns["segment"] = np.array([f"segment-{i:02d}" for i in range(SEGMENTS)])[segment]
    columns[TARGET] = y
    return pd.DataFrame(columns)


def fit_model(frame):
    """Scaling of the numeric features, then a LogisticRegression (other columns dropped)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = Pipeline(
        [
            ("features", ColumnTransformer([("scale", StandardScaler(), NUMERIC)])),
            ("classifier", LogisticRegression(max_iter=1000)),
        ]
    )
    return model.fit(frame.drop(columns=[TARGET]), frame[TARGET])


def naive_evaluate(model, frame) -> dict[tuple[str, str], dict[str, Any]]:
    """The loop one writes by hand: predict once, then every scikit-learn metric on every
    slice's rows (overall included); keyed by (slice column, slice label) as loopwise."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y = frame[TARGET].to_numpy()
    proba = model.predict_proba(frame.drop(columns=[TARGET]))[:, 1]
    pred = (proba >= 0.5).astype(np.int64)
    groups: list[tuple[str, str, np.ndarray]] = [("(all)", "(all)", np.arange(len(y)))]
    for column in ("region", "segment"):
        for value, rows in sorted(frame.groupby(column, observed=True).indices.items()):
            groups.append((column, str(value), rows))
    age = frame["age"].to_numpy()
    for low, high in itertools.pairwise(AGE_EDGES):
        groups.append(("age", f"[{low}, {high})", np.flatnonzero((age >= low) & (age < high))))
    out = {}
    for column, label, rows in groups:
        yt, yp, pp = y[rows], pred[rows], proba[rows]
        out[(column, label)] = {
            "n": len(rows),
            "accuracy": accuracy_score(yt, yp),
            "precision": precision_score(yt, yp, zero_division=np.nan),
            "recall": recall_score(yt, yp, zero_division=np.nan),
            "f1": f1_score(yt, yp, zero_division=np.nan),
            "roc_auc": roc_auc_score(yt, pp),
            "pr_auc": average_precision_score(yt, pp),
            "log_loss": log_loss(yt, pp, labels=[0, 1]),
            "confusion_matrix": confusion_matrix(yt, yp, labels=[0, 1]),
        }
    return out


# -- cold loads in a fresh process ------------------------------------------------------------


def child_main(spec: dict[str, Any]) -> int:
    """Time the imports and the first load of one tool in this fresh process."""
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    if spec["tool"] == "loopwise":
        import loopwise as lw

        imported = time.perf_counter()
        lw.configure(
            store_url=spec["store_url"],
            artifacts_url=spec["artifacts_url"],
            cache_dir=spec["cache_dir"],
            capture_environment=False,
        )
        configured = time.perf_counter()
        model = lw.load_model(spec["uri"])
    else:
        mlflow = quiet_mlflow()
        imported = time.perf_counter()
        mlflow.set_tracking_uri(spec["store_url"])
        configured = time.perf_counter()
        model = mlflow.sklearn.load_model(spec["uri"])
    loaded = time.perf_counter()
    out = {
        "import_ms": (imported - start) * 1000.0,
        "load_ms": (loaded - configured) * 1000.0,
        "type": type(model).__name__,
    }
    print(CHILD_PREFIX + json.dumps(out), flush=True)
    return 0


def quiet_mlflow() -> Any:
    """Import MLflow with no telemetry, git probing or async logging, and silence its
    warnings and info logs (its loggers are configured on import, so set after it)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    os.environ.pop("MLFLOW_ENABLE_ASYNC_LOGGING", None)
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
    warnings.filterwarnings("ignore", module=r"alembic(\.|$)")
    import mlflow
    import mlflow.sklearn

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return mlflow


# -- the bench --------------------------------------------------------------------------------


class Bench:
    def __init__(self, folder: Path, sizes: Sizes) -> None:
        self.folder = folder
        self.sizes = sizes
        self.results = Results("registry")
        self.failed_checks: list[str] = []
        self.rng = np.random.default_rng(20240612)
        self._model: Any = None
        self._train: Any = None
        self._lw_registered: Any = None
        self._ml_registered: Any = None

        lw_dir = folder / "loopwise"
        ml_dir = folder / "mlflow"
        lw_dir.mkdir()
        ml_dir.mkdir()

        import loopwise as lw
        from loopwise.context import get_store

        self.lw = lw
        self.lw_urls = {
            "store_url": f"sqlite:///{lw_dir / 'lw.db'}",
            "artifacts_url": str(lw_dir / "artifacts"),
        }
        lw.configure(**self.lw_urls, cache_dir=str(lw_dir / "cache"), capture_environment=False)
        self.store = get_store()

        try:
            mlflow = quiet_mlflow()
            from mlflow import MlflowClient
        except ImportError:
            sys.exit("MLflow is not installed here: pip install -e '.[bench]' (or `make bench`).")
        self.mlflow = mlflow
        self.ml_uri = f"sqlite:///{ml_dir / 'mlflow.db'}"
        mlflow.set_tracking_uri(self.ml_uri)
        mlflow.set_registry_uri(self.ml_uri)
        self.client = MlflowClient(self.ml_uri, self.ml_uri)
        seconds, _ = timed(self.client.search_experiments)  # creates and migrates the database
        self.ml_experiment = self.client.create_experiment(
            "bench", artifact_location=(ml_dir / "artifacts").as_uri()
        )
        progress(f"MLflow {mlflow.__version__}: database ready in {seconds:.1f}s")

    # -- helpers ----------------------------------------------------------------------------

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failed_checks.append(message)
            print(f"CHECK FAILED: {message}", file=sys.stderr, flush=True)

    def model(self):
        """The classifier every figure uses, fitted once on FIT_ROWS rows."""
        if self._model is None:
            self._train = make_frame(FIT_ROWS, seed=1)
            seconds, self._model = timed(lambda: fit_model(self._train))
            progress(f"model: LogisticRegression fitted on {FIT_ROWS:,} rows in {seconds:.1f}s")
        return self._model

    def example(self):
        self.model()
        return self._train.drop(columns=[TARGET]).head(5)

    def lw_registered(self) -> Any:
        """``credit-risk`` version 1 in loopwise's registry, alias ``champion``."""
        if self._lw_registered is None:
            lw = self.lw
            mv = lw.log_model(self.model(), name=MODEL, input_example=self.example())
            lw.set_alias(MODEL, ALIAS, version=mv.version)
            self._lw_registered = mv
        return self._lw_registered

    def ml_registered(self) -> Any:
        """The same model logged and registered in MLflow, alias ``champion``."""
        if self._ml_registered is None:
            mlflow = self.mlflow
            start = time.perf_counter()
            with mlflow.start_run(experiment_id=self.ml_experiment, run_name="train"):
                info = mlflow.sklearn.log_model(
                    self.model(),
                    name="model",
                    registered_model_name=MODEL,
                    input_example=self.example(),
                )
            version = str(info.registered_model_version)
            self.client.set_registered_model_alias(MODEL, ALIAS, version)
            progress(f"MLflow: model logged and registered in {time.perf_counter() - start:.1f}s")
            self._ml_registered = info
        return self._ml_registered

    # -- 1. evaluation with slices ----------------------------------------------------------

    def evaluate_slices(self) -> None:
        from loopwise.evaluation.evaluate import evaluate

        rows = self.sizes.rows
        model = self.model()
        seconds, frame = timed(lambda: make_frame(rows, seed=2))
        progress(f"evaluation data: {rows:,} rows in {seconds:.1f}s")
        features = frame.drop(columns=[TARGET])
        predict_s, _ = timed(lambda: model.predict_proba(features))

        def lw_eval():
            return evaluate(model, frame, target=TARGET, task="classification", slices=SLICES)

        lw_m = measure(lw_eval, repeat=REPEAT, warmup_below=WARMUP_BELOW_S)
        result = lw_m.value
        progress(f"loopwise evaluate: runs {_runs(lw_m.times)}")
        plain = measure(
            lambda: evaluate(model, frame, target=TARGET, task="classification"),
            repeat=REPEAT,
            warmup_below=WARMUP_BELOW_S,
        )
        naive_m = measure(
            lambda: naive_evaluate(model, frame), repeat=REPEAT, warmup_below=WARMUP_BELOW_S
        )
        progress(f"naive scikit-learn loop: runs {_runs(naive_m.times)}")
        self.check_evaluation(result, naive_m.value)

        n_slices = len(result.slice_metrics)
        self.results.add_against(
            "evaluate_slices_s",
            lw_m.seconds,
            "naive_sklearn",
            naive_m.seconds,
            higher_is_better=False,
            unit="s",
            note=(
                f"{rows:,} rows, {n_slices} slices (region {REGIONS}, segment {SEGMENTS}, age "
                f"in {len(AGE_EDGES) - 1} bins) + overall; both predict_proba once "
                f"({predict_s:.2f}s of each run). loopwise evaluate (also scores the "
                "majority-class baseline overall and per slice) vs a loop of 7 scikit-learn "
                "metrics + confusion_matrix per slice (rows from groupby indices / masks)\n"
                f"    runs: loopwise {_runs(lw_m.times)}, naive {_runs(naive_m.times)}; "
                f"loopwise without slices {plain.seconds:.2f} s; target >= "
                f"{TARGETS['evaluate_slices_s']:.0f}x: "
                f"{_met(naive_m.seconds / lw_m.seconds >= TARGETS['evaluate_slices_s'])}"
            ),
            extra={"slices": n_slices, "rows": rows},
        )
        self.evaluate_mlflow(frame, result, lw_m.seconds, plain.seconds)

    def check_evaluation(self, result, naive: dict[tuple[str, str], dict[str, Any]]) -> None:
        """loopwise's overall and per-slice metrics equal scikit-learn's on the same rows."""
        self.check(
            len(result.slice_metrics) == N_SLICES,
            f"loopwise returned {len(result.slice_metrics)} slices, expected {N_SLICES}",
        )
        names = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss")
        worst = 0.0
        overall = naive[("(all)", "(all)")]
        for name in names:
            worst = max(worst, abs(result.metrics[name] - overall[name]))
        cm = np.asarray(result.metrics["confusion_matrix"])
        self.check(
            np.array_equal(cm, overall["confusion_matrix"]), "overall confusion matrices differ"
        )
        missing = 0
        for row in result.slice_metrics.itertuples(index=False):
            theirs = naive.get((row.slice_column, row.slice_value))
            if theirs is None or theirs["n"] != row.n:
                missing += 1
                continue
            for name in names:
                worst = max(worst, abs(getattr(row, name) - theirs[name]))
        self.check(missing == 0, f"{missing} loopwise slices not found in the naive loop's")
        self.check(worst < 1e-9, f"loopwise and scikit-learn metrics differ by up to {worst:g}")
        progress(f"metrics agree with scikit-learn on every slice (max difference {worst:.1e})")

    def evaluate_mlflow(self, frame, result, lw_seconds: float, plain_seconds: float) -> None:
        """``mlflow.models.evaluate`` of the registered pyfunc model, default evaluator.

        MLflow has no slices, so its overall evaluation is timed (loopwise's figure is its
        evaluation with the 50 slices). The call logs metrics and plots to an open run.
        """
        mlflow = self.mlflow
        reason = None
        ml_m = None
        try:
            self.ml_registered()
            pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL}@{ALIAS}")
            config = {"log_model_explainability": False}  # SHAP: not installed, very slow
            with mlflow.start_run(experiment_id=self.ml_experiment, run_name="evaluate"):

                def ml_eval():
                    return mlflow.models.evaluate(
                        model=pyfunc,
                        data=frame,
                        targets=TARGET,
                        model_type="classifier",
                        evaluators="default",
                        evaluator_config=config,
                    )

                ml_m = measure(
                    ml_eval,
                    repeat=REPEAT,
                    warmup_below=WARMUP_BELOW_S,
                    single_above=MLFLOW_SINGLE_ABOVE_S,
                )
        except Exception as e:  # any failure of MLflow's evaluate is reported, not fatal
            reason = f"mlflow.models.evaluate failed: {type(e).__name__}: {str(e)[:300]}"
            print(f"NOTE: {reason}", flush=True)
        note = (
            "MLflow cannot evaluate per slice: its OVERALL evaluation (mlflow.models.evaluate "
            "of the registered pyfunc model, default evaluator, classifier, SHAP explainability "
            "off; it calls predict and predict_proba, computes the metrics and logs them with "
            "its plots to the run) vs loopwise WITH the "
            f"{len(result.slice_metrics)} slices"
        )
        extra: dict[str, Any] = {"mlflow_per_slice": False, "loopwise_overall_only": plain_seconds}
        if ml_m is None:
            extra["mlflow_error"] = reason
        else:
            metrics = ml_m.value.metrics
            gaps = {
                "accuracy": abs(metrics["accuracy_score"] - result.metrics["accuracy"]),
                "roc_auc": abs(metrics["roc_auc"] - result.metrics["roc_auc"]),
                "log_loss": abs(metrics["log_loss"] - result.metrics["log_loss"]),
            }
            self.check(
                max(gaps.values()) < 1e-6, f"MLflow and loopwise overall metrics differ: {gaps}"
            )
            note += (
                f"\n    runs: mlflow {_runs(ml_m.times)}; loopwise overall only "
                f"{plain_seconds:.2f} s ({ml_m.seconds / plain_seconds:.1f}x); "
                f"{len(ml_m.value.artifacts)} artifacts logged per call; overall accuracy, "
                "roc_auc and log_loss agree"
            )
        self.results.add_against(
            "evaluate_vs_mlflow_s",
            lw_seconds,
            "mlflow",
            None if ml_m is None else ml_m.seconds,
            higher_is_better=False,
            unit="s",
            note=note if reason is None else f"{note}\n    {reason}",
            extra=extra,
        )

    # -- 2. load_model ----------------------------------------------------------------------

    def load_model(self) -> None:
        lw, mlflow = self.lw, self.mlflow
        from loopwise.registry import loading as lw_loading

        uri = f"models:/{MODEL}@{ALIAS}"
        model = self.model()
        sample = self._train.drop(columns=[TARGET]).head(1000)
        expected = model.predict(sample)

        mv = self.lw_registered()
        lw_first, loaded = timed(lambda: lw.load_model(uri))
        lw_ms, loaded = median_ms(lambda: lw.load_model(uri), repeat=LOADS)
        self.check(
            np.array_equal(loaded.predict(sample), expected),
            "loopwise's loaded model predicts otherwise",
        )
        self.check(loaded.raw is not model, "loopwise returned the in-memory model it logged")

        def disk_load():
            lw_loading._loaded.clear()  # the in-memory cache: time the disk-cache path
            return lw.load_model(uri)

        lw_disk_ms, _ = median_ms(disk_load, repeat=10)
        lw_cold = self.cold_load(
            {"tool": "loopwise", **self.lw_urls, "cache_dir": str(self.folder / "cold-cache")}
        )

        self.ml_registered()
        ml_first, ml_loaded = timed(lambda: mlflow.sklearn.load_model(uri))
        ml_ms, ml_loaded = median_ms(lambda: mlflow.sklearn.load_model(uri), repeat=LOADS)
        self.check(
            np.array_equal(ml_loaded.predict(sample), expected),
            "MLflow's loaded model predicts otherwise",
        )
        ml_cold = self.cold_load({"tool": "mlflow", "store_url": self.ml_uri})

        def cold_text(cold: dict[str, Any] | None) -> str:
            if cold is None:
                return "failed"
            return f"import {cold['import_ms']:,.0f} ms + first load {cold['load_ms']:,.0f} ms"

        target = TARGETS["load_model_ms"]
        self.results.add_against(
            "load_model_ms",
            lw_ms,
            "mlflow",
            ml_ms,
            higher_is_better=False,
            unit="ms",
            note=(
                f"warm load of {uri!r} (scikit-learn Pipeline, version {mv.version}), median "
                f"of {LOADS} after a first load; loopwise resolves the alias (one query) and "
                "returns its in-memory copy, MLflow resolves it, copies the artifacts and "
                "unpickles every time\n"
                f"    loopwise: first call {lw_first * 1000:,.1f} ms (fresh cache_dir: "
                f"package copied + unpickled), disk cache only (memory cache cleared) "
                f"{lw_disk_ms:,.1f} ms; new process: {cold_text(lw_cold)}\n"
                f"    MLflow: first call {ml_first * 1000:,.1f} ms; new process: "
                f"{cold_text(ml_cold)}; target <= {target:.0f} ms warm: {_met(lw_ms <= target)}"
            ),
            extra={
                "loopwise_first_ms": round(lw_first * 1000, 2),
                "loopwise_disk_cache_ms": round(lw_disk_ms, 2),
                "loopwise_new_process_ms": None if lw_cold is None else round(lw_cold["load_ms"]),
                "mlflow_first_ms": round(ml_first * 1000, 2),
                "mlflow_new_process_ms": None if ml_cold is None else round(ml_cold["load_ms"]),
            },
        )

    def cold_load(self, spec: dict[str, Any]) -> dict[str, Any] | None:
        """Imports and the first load of ``models:/credit-risk@champion`` in a new process."""
        spec = {**spec, "uri": f"models:/{MODEL}@{ALIAS}"}
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, json.dumps(spec)],
            stdout=subprocess.PIPE,
            text=True,
            check=False,
            cwd=self.folder,  # anything a tool writes to its working folder lands here
        )
        lines = [s for s in proc.stdout.splitlines() if s.startswith(CHILD_PREFIX)]
        if proc.returncode != 0 or not lines:
            self.check(False, f"{spec['tool']} cold load failed (exit {proc.returncode})")
            return None
        out = json.loads(lines[-1][len(CHILD_PREFIX) :])
        progress(
            f"{spec['tool']} in a new process: import {out['import_ms']:,.0f} ms, "
            f"first load {out['load_ms']:,.0f} ms ({out['type']})"
        )
        return out

    # -- 3. registry queries ----------------------------------------------------------------

    def registry_queries(self) -> None:
        n, rng = self.sizes.versions, self.rng
        schedule = self.move_schedule()
        params = [{f"p{j}": f"{rng.integers(0, 100)}" for j in range(PARAMS)} for _ in range(n)]
        metrics = [{f"m{j}": float(v) for j, v in enumerate(rng.random(METRICS))} for _ in range(n)]

        lw_runs, moves = self.lw_history(schedule, params, metrics)
        ml_runs = self.ml_history(schedule, params, metrics)

        # Random moments over the alias history, random aliases and versions.
        first, last = moves[0][0], moves[-1][0]
        span = (last - first).total_seconds()
        moments = [
            (str(rng.choice(["champion", "challenger"])), first + timedelta(seconds=span * u))
            for u in rng.random(QUERIES)
        ]
        picks = [int(v) for v in rng.integers(1, n + 1, QUERIES)]
        expected_at = [_holder_at(moves, alias, at) for alias, at in moments]

        lw = self.lw
        at_ms, got = median_ms_over(
            lambda q: lw.version_at(HISTORY_MODEL, alias=q[0], at=q[1]), moments, warmup=5
        )
        wrong = sum(g != e for g, e in zip(got, expected_at, strict=True))
        self.check(wrong == 0, f"loopwise version_at: {wrong} of {QUERIES} answers wrong")
        lineage_ms, got = median_ms_over(
            lambda v: lw.model_lineage(f"models:/{HISTORY_MODEL}/{v}"), picks, warmup=5
        )
        wrong = sum(
            lin.run is None or lin.run.id != lw_runs[v - 1] or len(lin.run.params) != PARAMS
            for lin, v in zip(got, picks, strict=True)
        )
        self.check(wrong == 0, f"loopwise model_lineage: {wrong} of {QUERIES} lineages wrong")

        client = self.client
        holders = {alias: _holder_at(moves, alias, last) for alias in ("champion", "challenger")}
        aliases = [alias for alias, _ in moments]
        alias_ms, got = median_ms_over(
            lambda a: client.get_model_version_by_alias(HISTORY_MODEL, a), aliases, warmup=5
        )
        wrong = sum(int(mv.version) != holders[a] for mv, a in zip(got, aliases, strict=True))
        self.check(wrong == 0, f"MLflow get_model_version_by_alias: {wrong} answers wrong")

        def ml_lineage(version: int):
            mv = client.get_model_version(HISTORY_MODEL, str(version))
            return mv, client.get_run(mv.run_id)

        ml_lineage_ms, got = median_ms_over(ml_lineage, picks, warmup=5)
        wrong = sum(
            mv.run_id != ml_runs[v - 1] or len(run.data.params) != PARAMS
            for (mv, run), v in zip(got, picks, strict=True)
        )
        self.check(wrong == 0, f"MLflow version -> run lookups: {wrong} of {QUERIES} wrong")

        lw_value = max(at_ms, lineage_ms)
        ml_value = max(alias_ms, ml_lineage_ms)
        target = TARGETS["registry_query_ms"]
        self.results.add_against(
            "registry_query_ms",
            lw_value,
            "mlflow",
            ml_value,
            higher_is_better=False,
            unit="ms",
            note=(
                f"{n:,} versions of one model, {len(moves)} alias moves (champion, "
                f"challenger); median of {QUERIES} random queries each, the slower kind "
                "per tool\n"
                f"    loopwise: version_at(random alias, random moment) {fmt(at_ms)} ms, "
                f"model_lineage(random version: run, params, metrics, datasets, evaluations) "
                f"{fmt(lineage_ms)} ms\n"
                f"    MLflow (no version_at): get_model_version_by_alias (current holder only) "
                f"{fmt(alias_ms)} ms, get_model_version + get_run (run, params, metrics) "
                f"{fmt(ml_lineage_ms)} ms; target <= {target:.0f} ms: "
                f"{_met(lw_value <= target)}"
            ),
            extra={
                "loopwise_version_at_ms": round(at_ms, 3),
                "loopwise_lineage_ms": round(lineage_ms, 3),
                "mlflow_alias_ms": round(alias_ms, 3),
                "mlflow_version_run_ms": round(ml_lineage_ms, 3),
                "versions": n,
            },
        )

    def move_schedule(self) -> list[tuple[int, str, int]]:
        """(after registering version i, alias, to version <= i): the same for both tools,
        spread over the registration so the history interleaves versions and moves."""
        n, rng = self.sizes.versions, self.rng
        after = np.sort(rng.integers(1, n + 1, self.sizes.moves))
        aliases = np.where(rng.random(len(after)) < 0.4, "champion", "challenger")
        return [
            (int(i), str(alias), int(rng.integers(1, i + 1)))
            for i, alias in zip(after, aliases, strict=True)
        ]

    def lw_history(self, schedule, params, metrics) -> tuple[list[str], list[tuple[Any, str, int]]]:
        """The versions, their runs and the alias moves through loopwise's service layer."""
        from loopwise.registry import models as R
        from loopwise.registry.packaging import save_package
        from loopwise.tracking import runs as T
        from loopwise.tracking.fluent import writer_for

        store, n = self.store, self.sizes.versions
        writer = writer_for(store)
        package = self.folder / "lw-package"
        save_package(self.model(), package, input_example=self.example())
        manifest = json.loads((package / "loopwise_model.json").read_text())
        start = time.perf_counter()
        run_ids: list[str] = []
        moves: list[tuple[Any, str, int]] = []
        pending = iter(schedule)
        move = next(pending, None)
        for i in range(1, n + 1):
            run_id = T.create_run(store, "credit-risk-training", name=f"train-{i:04d}")
            T.log_params(store, run_id, params[i - 1])
            ts = time.time_ns() // 1000
            for key, value in metrics[i - 1].items():
                writer.add(run_id, key, 0, ts, value)
            writer.flush()
            T.end_run(store, run_id)
            R.register_version(store, HISTORY_MODEL, package, manifest, run_id=run_id)
            run_ids.append(run_id)
            while move is not None and move[0] == i:
                done = R.set_alias(store, HISTORY_MODEL, move[1], move[2])
                moves.append((done.moved_at, move[1], move[2]))
                move = next(pending, None)
            if i % 200 == 0:
                progress(f"loopwise setup: {i:,}/{n:,} versions")
        progress(
            f"loopwise setup: {n:,} versions, {len(moves)} alias moves in "
            f"{time.perf_counter() - start:.1f}s"
        )
        return run_ids, moves

    def ml_history(self, schedule, params, metrics) -> list[str]:
        """The same history in MLflow: one logged model, a run and a version per version."""
        from mlflow.entities import Metric, Param

        mlflow, client, n = self.mlflow, self.client, self.sizes.versions
        with mlflow.start_run(experiment_id=self.ml_experiment, run_name="package"):
            info = mlflow.sklearn.log_model(
                self.model(), name="model", input_example=self.example()
            )
        client.create_registered_model(HISTORY_MODEL)
        start = time.perf_counter()
        run_ids = []
        pending = iter(schedule)
        move = next(pending, None)
        for i in range(1, n + 1):
            run_id = client.create_run(self.ml_experiment, run_name=f"train-{i:04d}").info.run_id
            ts = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, ts, 0) for k, v in metrics[i - 1].items()],
                params=[Param(k, v) for k, v in params[i - 1].items()],
            )
            client.set_terminated(run_id)
            mv = client.create_model_version(
                HISTORY_MODEL, info.model_uri, run_id=run_id, model_id=info.model_id
            )
            self.check(int(mv.version) == i, f"MLflow numbered version {i} as {mv.version}")
            run_ids.append(run_id)
            while move is not None and move[0] == i:
                client.set_registered_model_alias(HISTORY_MODEL, move[1], str(move[2]))
                move = next(pending, None)
            if i % 100 == 0:
                elapsed = time.perf_counter() - start
                progress(
                    f"MLflow setup: {i:,}/{n:,} versions, {elapsed / i * 1000:.0f} ms each, "
                    f"about {elapsed / i * (n - i):.0f}s left"
                )
        progress(f"MLflow setup: {n:,} versions in {time.perf_counter() - start:.1f}s")
        return run_ids


def _holder_at(moves: list[tuple[Any, str, int]], alias: str, at: Any) -> int | None:
    """The version ``alias`` pointed at, at moment ``at``, from the recorded moves."""
    times = [m[0] for m in moves if m[1] == alias]
    targets = [m[2] for m in moves if m[1] == alias]
    i = bisect.bisect_right(times, at)
    return targets[i - 1] if i else None


def _runs(times: list[float]) -> str:
    return "/".join(f"{t:.3f}" for t in times) + " s"


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD_FLAG]:
        return child_main(json.loads(argv[1]))
    args = make_parser(__doc__.splitlines()[0], FIGURES).parse_args(argv)
    sizes = QUICK if args.quick else FULL
    figures = [args.only] if args.only else list(FIGURES)
    mode = "quick" if args.quick else "full"
    print(f"bench registry ({mode}): {', '.join(figures)}", flush=True)
    with work_folder(args.workdir, "bench-registry-") as folder:
        bench = Bench(folder, sizes)
        steps = {
            "evaluate_slices_s": bench.evaluate_slices,
            "load_model_ms": bench.load_model,
            "registry_query_ms": bench.registry_queries,
        }
        run_figures(figures, lambda figure: steps[figure]())
        from loopwise import context

        context.reset()  # flush and let go of the store before its folder is removed
        bench.results.print_results()
    return exit_code(bench.failed_checks)


if __name__ == "__main__":
    sys.exit(main())
