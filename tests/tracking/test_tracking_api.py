"""The module-level tracking API end to end, on SQLite and PostgreSQL and through a server."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from loopwise.errors import (
    InvalidFilter,
    InvalidInput,
    NoActiveRun,
    NotFound,
    ParamConflict,
)

pytestmark = pytest.mark.remote_conformance


def test_run_lifecycle_params_metrics_tags(lw):
    with lw.start_run(experiment="churn", name="baseline", tags={"team": "risk"}) as run:
        lw.log_param("C", 1.0)
        lw.log_params({"model": "rf", "depth": 5, "layers": [64, 32]})
        lw.log_metric("auc", 0.91, step=3)
        lw.log_metrics({"loss": 0.2, "acc": 0.88}, step=3)
        lw.set_tag("stage", "dev")
        lw.set_tags({"owner": "ana"})
    got = lw.get_run(run.id)
    assert got.status == lw.RunStatus.FINISHED
    assert got.name == "baseline"
    assert got.experiment == "churn"
    assert got.end_time >= got.start_time
    assert got.params == {"C": "1.0", "model": "rf", "depth": "5", "layers": "[64, 32]"}
    assert got.metrics == {"auc": 0.91, "loss": 0.2, "acc": 0.88}
    assert got.tags == {"team": "risk", "stage": "dev", "owner": "ana"}
    assert got.uri == f"runs:/{run.id}"
    json.dumps(got.to_dict())


def test_environment_is_recorded(lw):
    with lw.start_run(experiment="env") as run:
        pass
    env = lw.get_run(run.id).environment
    assert env["python"]["version"]
    assert "pandas" in env["packages"]
    assert env["cpu"]["logical_cores"] >= 1
    assert env["memory_bytes"] > 0
    assert {"git", "entry_point", "argv"} <= set(env)


def test_generated_names_are_readable(lw):
    with lw.start_run() as run:
        pass
    name = lw.get_run(run.id).name
    assert len(name.split("-")) == 3
    assert lw.get_run(run.id).experiment == "default"


def test_nested_runs_get_a_parent(lw):
    with lw.start_run(experiment="tune") as parent:
        with lw.start_run(name="trial-1") as child:
            lw.log_metric("score", 1.0)
        assert lw.active_run() is parent
    got = lw.get_run(child.id)
    assert got.parent_run_id == parent.id
    assert got.experiment == "tune"
    assert lw.active_run() is None


def test_failed_and_killed_runs(lw):
    with pytest.raises(ZeroDivisionError), lw.start_run(experiment="x") as failed:
        1 / 0  # noqa: B018
    with pytest.raises(KeyboardInterrupt), lw.start_run(experiment="x") as killed:
        raise KeyboardInterrupt
    assert lw.get_run(failed.id).status == lw.RunStatus.FAILED
    assert lw.get_run(killed.id).status == lw.RunStatus.KILLED


def test_metric_history_orders_steps_and_keeps_special_values(lw):
    with lw.start_run(experiment="h") as run:
        for step, value in [(2, math.inf), (0, math.nan), (1, -math.inf), (3, 0.5)]:
            lw.log_metric("loss", value, step=step)
    history = lw.get_metric_history(run.id, "loss")
    assert list(history.columns) == ["step", "timestamp", "value"]
    assert history["step"].tolist() == [0, 1, 2, 3]
    values = history["value"].tolist()
    assert math.isnan(values[0])
    assert values[1:] == [-math.inf, math.inf, 0.5]
    assert str(history["timestamp"].dt.tz) == "UTC"
    assert lw.get_run(run.id).metrics["loss"] == 0.5


def test_latest_metric_is_highest_step_even_if_logged_first(lw):
    with lw.start_run(experiment="h") as run:
        lw.log_metric("m", 9.0, step=10)
        lw.flush()
        lw.log_metric("m", 1.0, step=2)
    assert lw.get_run(run.id).metrics["m"] == 9.0
    assert lw.get_metric_history(run.id, "m")["step"].tolist() == [2, 10]


def test_nan_latest_value_reads_back_as_nan(lw):
    with lw.start_run(experiment="h") as run:
        lw.log_metric("m", float("nan"))
    assert math.isnan(lw.get_run(run.id).metrics["m"])


def test_steps_auto_increment(lw):
    with lw.start_run(experiment="h") as run:
        for i in range(5):
            lw.log_metric("loss", 1.0 / (i + 1))
        lw.log_metrics({"a": 1.0, "b": 2.0})
        lw.log_metrics({"a": 1.0, "b": 2.0})
    assert lw.get_metric_history(run.id, "loss")["step"].tolist() == [0, 1, 2, 3, 4]
    assert lw.get_metric_history(run.id, "b")["step"].tolist() == [0, 1]


def test_numpy_values_and_timestamps(lw):
    import datetime as dt

    import numpy as np

    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    with lw.start_run(experiment="h") as run:
        lw.log_metric("a", np.float32(0.5), step=np.int64(7), timestamp=moment)
        lw.log_metrics({"b": np.int64(3)})
    history = lw.get_metric_history(run.id, "a")
    assert history["step"].tolist() == [7]
    assert history["timestamp"].iloc[0] == pd.Timestamp(moment)
    assert lw.get_run(run.id).metrics["b"] == 3.0


def test_params_are_immutable(lw):
    with lw.start_run(experiment="p") as run:
        lw.log_param("C", 1.0)
        lw.log_param("C", 1.0)  # same value again is fine
        with pytest.raises(ParamConflict, match=r"Param 'C' of run .* already logged as '1.0'"):
            lw.log_param("C", 2.0)
    assert lw.get_run(run.id).params == {"C": "1.0"}


def test_bad_input_errors_name_the_problem(lw):
    with lw.start_run(experiment="bad") as run:
        with pytest.raises(InvalidInput, match=r"Metric 'auc' of run .* must be a number, got str"):
            lw.log_metric("auc", "high")
        with pytest.raises(InvalidInput, match="must be a number"):
            lw.log_metric("auc", None)
        with pytest.raises(InvalidInput, match="250"):
            lw.log_metric("k" * 300, 1.0)
        with pytest.raises(InvalidInput, match="250"):
            lw.log_param("p" * 251, 1)
        with pytest.raises(InvalidInput, match="'learning_rate' instead"):
            lw.log_param(" learning_rate", 0.1)
        with pytest.raises(InvalidInput, match="integer"):
            lw.log_metric("auc", 0.5, step=1.5)
        with pytest.raises(InvalidInput, match="limit is 8000"):
            lw.set_tag("note", "x" * 9000)
        naive = __import__("datetime").datetime(2026, 1, 1)
        with pytest.raises(InvalidInput, match="time zone"):
            lw.log_metric("auc", 0.5, timestamp=naive)
        lw.log_metric("auc", 0.9)
    assert lw.get_run(run.id).metrics == {"auc": 0.9}
    with pytest.raises(NotFound, match="Run 'nope' does not exist"):
        lw.get_run("nope")
    with pytest.raises(NotFound, match=r"no metric 'missing'\. Its metrics: auc"):
        lw.get_metric_history(run.id, "missing")
    with pytest.raises(NoActiveRun, match="start_run"):
        lw.log_metric("auc", 1.0)
    with pytest.raises(InvalidFilter, match=r"position"):
        lw.search_runs(filter="metrics.auc >")


def test_every_error_is_a_loopwise_error(lw):
    with pytest.raises(lw.LoopwiseError):
        lw.get_run("unknown-run")


def _populate(lw):
    ids = {}
    for name, model, team, auc in [
        ("a", "rf", "risk", 0.95),
        ("b", "rf", "risk", 0.85),
        ("c", "lr", "risk", 0.90),
        ("d", "rf", "growth", 0.99),
        ("e", "rf", "risk", 0.70),
    ]:
        with lw.start_run(experiment="churn", name=name, tags={"team": team}) as run:
            lw.log_params({"model": model, "C": len(name) * 0.5 + ord(name) % 3})
            lw.log_metric("auc", auc)
        ids[name] = run.id
    with lw.start_run(experiment="other", name="z") as run:
        lw.log_metric("auc", 1.0)
    ids["z"] = run.id
    return ids


def test_search_runs_filter_and_order(lw):
    _populate(lw)
    frame = lw.search_runs(
        experiment="churn",
        filter="metrics.auc > 0.8 and params.model = 'rf' and tags.team = 'risk'",
        order_by=["metrics.auc DESC"],
        max_results=100,
    )
    assert isinstance(frame, pd.DataFrame)
    assert frame["name"].tolist() == ["a", "b"]
    assert frame["metrics.auc"].tolist() == [0.95, 0.85]
    assert {"run_id", "status", "start_time", "params.model", "tags.team"} <= set(frame.columns)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("metrics.auc >= 0.9", {"a", "c", "d"}),
        ("metrics.auc < 0.8 or params.model = 'lr'", {"c", "e"}),
        ("not tags.team = 'risk'", {"d"}),
        ("params.model in ('lr', 'xx')", {"c"}),
        ("tags.team != 'risk'", {"d"}),
        ("name like 'a%' or name = 'e'", {"a", "e"}),
        ("metrics.missing is null", {"a", "b", "c", "d", "e"}),
        ("metrics.auc is not null and metrics.auc <= 0.85", {"b", "e"}),
        ("status = 'finished' and metrics.auc > 0.98", {"d"}),
        ("(metrics.auc > 0.8 and metrics.auc < 0.9) or name = 'd'", {"b", "d"}),
    ],
)
def test_search_runs_filters(lw, query, expected):
    _populate(lw)
    frame = lw.search_runs(experiment="churn", filter=query)
    assert set(frame["name"]) == expected


def test_search_runs_order_limit_and_all_experiments(lw):
    ids = _populate(lw)
    frame = lw.search_runs(order_by=["metrics.auc ASC"], max_results=2)
    assert frame["name"].tolist() == ["e", "b"]
    everything = lw.search_runs()
    assert set(everything["run_id"]) == set(ids.values())
    assert everything["name"].tolist()[0] == "z"  # newest first by default
    both = lw.search_runs(experiment=["churn", "other"], filter="metrics.auc >= 0.99")
    assert set(both["name"]) == {"d", "z"}
    by_param = lw.search_runs(experiment="churn", order_by="params.model DESC, name ASC")
    assert by_param["name"].tolist()[:4] == ["a", "b", "d", "e"]


def test_search_runs_numeric_param_comparison(lw):
    with lw.start_run(experiment="num", name="small") as _:
        lw.log_params({"lr": 0.001, "opt": "adam"})
    with lw.start_run(experiment="num", name="big") as _:
        lw.log_params({"lr": 0.1, "opt": "sgd"})
    frame = lw.search_runs(experiment="num", filter="params.lr > 0.01")
    assert frame["name"].tolist() == ["big"]
    frame = lw.search_runs(experiment="num", filter="params.opt > 1")
    assert frame.empty


def test_search_runs_empty_and_unknown_experiment(lw):
    _populate(lw)
    empty = lw.search_runs(experiment="churn", filter="metrics.auc > 5")
    assert empty.empty
    assert "run_id" in empty.columns
    with pytest.raises(NotFound, match="Experiment 'chrun' does not exist"):
        lw.search_runs(experiment="chrun")
    with pytest.raises(InvalidFilter, match="status"):
        lw.search_runs(filter="status = 'done'")


def test_search_runs_by_start_time_needs_a_zone(lw):
    _populate(lw)
    runs = len(lw.search_runs(experiment="churn"))

    def found(where: str) -> int:
        return len(lw.search_runs(experiment="churn", filter=f"start_time {where}"))

    assert found("> '2000-01-01T00:00Z'") == found("> 946684800") == runs
    assert found("< '2000-01-01T02:00+02:00'") == 0
    naive = "has no time zone; write it with one, e.g. 2000-01-01T00:00Z"
    with pytest.raises(InvalidFilter, match=naive):
        found("> '2000-01-01'")
    with pytest.raises(InvalidFilter, match="is not an ISO 8601 time"):
        found("> 'yesterday'")


def test_list_experiments_counts_runs(lw):
    _populate(lw)
    counts = {e.name: e.run_count for e in lw.list_experiments()}
    assert counts == {"churn": 5, "other": 1}


def test_artifacts_roundtrip_and_dedup(lw, tmp_path):
    plot = tmp_path / "plot.png"
    plot.write_bytes(b"\x89PNG fake image")
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w" * 1000)
    (folder / "sub" / "meta.txt").write_text("meta")
    with lw.start_run(experiment="art") as run:
        lw.log_artifact(plot)
        lw.log_artifact(plot, "again")
        lw.log_artifact(folder, "model")
        lw.log_dict({"lr": 0.1}, "config.json")
        lw.log_dict({"lr": 0.1}, "config.yaml")
        lw.log_text("# notes", "notes.md")
        with pytest.raises(InvalidInput, match="relative"):
            lw.log_text("x", "../escape.txt")
        with pytest.raises(NotFound, match="no such file"):
            lw.log_artifact(tmp_path / "missing.png")
    paths = [a.path for a in lw.list_artifacts(run.id)]
    assert paths == [
        "again/plot.png",
        "config.json",
        "config.yaml",
        "model/sub/meta.txt",
        "model/weights.bin",
        "notes.md",
        "plot.png",
    ]
    infos = {a.path: a for a in lw.list_artifacts(run.id)}
    assert infos["plot.png"].sha256 == infos["again/plot.png"].sha256
    out = lw.download_artifacts(run.id, "model", tmp_path / "out")
    assert (out / "weights.bin").read_bytes() == b"w" * 1000
    assert (out / "sub" / "meta.txt").read_text() == "meta"
    everything = lw.download_artifacts(run.id, dst=tmp_path / "all")
    assert json.loads((everything / "config.json").read_text()) == {"lr": 0.1}
    assert (everything / "config.yaml").read_text().strip() == "lr: 0.1"
    with pytest.raises(NotFound, match="no artifact"):
        lw.download_artifacts(run.id, "nothing-here", tmp_path / "x")


def test_resume_a_run(lw):
    with lw.start_run(experiment="r") as run:
        lw.log_metric("m", 1.0, step=0)
    with lw.start_run(run_id=run.id):
        lw.log_metric("m", 2.0, step=1)
    assert lw.get_metric_history(run.id, "m")["value"].tolist() == [1.0, 2.0]


def test_reconfigure_while_a_run_is_active_is_refused(lw, tmp_path):
    with lw.start_run(experiment="r"), pytest.raises(lw.Conflict, match="End the run first"):
        lw.configure(store_url=f"sqlite:///{tmp_path}/other.db")


def test_wrong_argument_types_are_clear_errors(lw):
    with pytest.raises(InvalidInput, match="must be a dict"):
        lw.start_run(experiment="t", tags=["a"])
    with pytest.raises(InvalidInput, match="Experiment name"):
        lw.start_run(experiment="")
    with lw.start_run(experiment="t") as run:
        with pytest.raises(InvalidInput, match=r"log_params takes a dict"):
            lw.log_params(["lr", 0.1])
        with pytest.raises(InvalidInput, match=r"log_metrics takes a dict"):
            lw.log_metrics([0.1, 0.2])
        with pytest.raises(InvalidInput, match=r"set_tags takes a dict"):
            lw.set_tags("team")
        with pytest.raises(InvalidInput, match="ends with one of"):
            lw.end_run("DONE")
    assert lw.get_run(run.id).status == lw.RunStatus.FINISHED
    with lw.start_run(experiment="t") as run:
        lw.end_run("killed")
    assert lw.get_run(run.id).status == lw.RunStatus.KILLED
    with pytest.raises(InvalidFilter, match="max_results"):
        lw.search_runs(max_results="10")


def test_a_batch_moves_the_latest_point_only_forward_and_counts_every_point(store):
    from sqlalchemy import select

    from loopwise.store.tables import metric_series
    from loopwise.tracking.log_batch import log_batch
    from loopwise.tracking.runs import create_run

    run_id = create_run(store, "batches")
    log_batch(store, run_id, metrics=[("m", 1.0, 5, 100), ("m", 2.0, 5, 200)])
    log_batch(store, run_id, metrics=[("m", 3.0, 4, 900), ("m", 4.0, 5, 150)])  # older
    log_batch(store, run_id, metrics=[("m", 5.0, 5, 200)])  # a tie: the later write wins
    with store.db.read() as conn:
        row = conn.execute(select(metric_series).where(metric_series.c.run_id == run_id)).one()
    assert (row.count, row.last_step, row.last_timestamp, row.last_value) == (5, 5, 200, 5.0)
    log_batch(store, run_id, metrics=[("m", 6.0, 6, 1), ("m", float("nan"), 7, 1)])
    with store.db.read() as conn:
        row = conn.execute(select(metric_series).where(metric_series.c.run_id == run_id)).one()
    assert (row.count, row.last_step, row.last_value) == (7, 7, None)  # NaN is NULL
