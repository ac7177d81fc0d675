"""Runs are found by their name as well as their id (on SQLite and PostgreSQL).

Why: run names are what people see (``calm-tiger-826`` in every listing), so a run taken
by id must be taken by name too, without ever guessing between two runs of one name.
"""

from __future__ import annotations

import math

import pytest

from loopwise.errors import InvalidInput, NotFound
from loopwise.tracking.fluent import writer_for
from loopwise.tracking.runs import create_run, get_run, metric_history, resolve_run_id


def test_a_unique_name_finds_its_run(store):
    run_id = create_run(store, "churn", name="calm-tiger-826")
    create_run(store, "churn", name="other")
    assert resolve_run_id(store, "calm-tiger-826") == run_id
    assert resolve_run_id(store, "runs:/calm-tiger-826") == run_id
    assert resolve_run_id(store, f"runs:/{run_id}") == run_id
    assert get_run(store, "calm-tiger-826").id == run_id


def test_an_id_wins_over_a_name(store):
    first = create_run(store, "churn", name="first")
    second = create_run(store, "churn", name=first)  # a name that is another run's id
    assert resolve_run_id(store, first) == first
    assert get_run(store, first).name == "first"
    assert get_run(store, second).name == first


def test_a_shared_name_is_refused_with_the_candidates(store):
    a = create_run(store, "churn", name="twin")
    b = create_run(store, "other", name="twin")
    with pytest.raises(InvalidInput, match="Run name 'twin' is ambiguous: 2 runs have it") as e:
        get_run(store, "twin")
    message = str(e.value)
    for expected in (a, b, "experiment churn", "experiment other"):
        assert expected in message
    assert "Give the run id instead" in message
    assert get_run(store, a).experiment == "churn"  # ids still work


def test_an_unknown_run_or_a_bad_value(store):
    with pytest.raises(NotFound, match=r"Run 'nope' does not exist .*no run has that id or name"):
        get_run(store, "nope")
    for bad in ("", "  ", None, 3):
        with pytest.raises(InvalidInput, match="by its id or its name"):
            resolve_run_id(store, bad)


def test_metric_history_by_name(store):
    run_id = create_run(store, "churn", name="trainer")
    writer = writer_for(store)
    for step, value in enumerate([0.9, 0.5, math.nan, 0.2]):
        writer.add(run_id, "loss", step, 1_000_000 * step, value)
    writer.flush()
    history = metric_history(store, "trainer", "loss")
    assert list(history["step"]) == [0, 1, 2, 3]
    assert math.isnan(history["value"][2])
    with pytest.raises(NotFound, match=r"has no metric 'acc'\. Its metrics: loss"):
        metric_history(store, "runs:/trainer", "acc")


def test_the_api_takes_run_names(lw):
    with lw.start_run(experiment="names", name="calm-tiger-826") as run:
        lw.log_metric("auc", 0.8)
    assert lw.get_run("calm-tiger-826").id == run.id
    assert lw.get_run("runs:/calm-tiger-826").id == run.id
    with lw.start_run(run_id="calm-tiger-826") as resumed:  # resume by name
        lw.log_metric("auc", 0.9)
    assert resumed.id == run.id
    assert lw.get_run(run.id).metrics["auc"] == 0.9


def test_metric_history_and_artifacts_take_a_run_name(lw, tmp_path):
    with lw.start_run(name="calm-tiger-826") as run:
        lw.log_metric("loss", 0.5, step=0)
        lw.log_metric("loss", 0.25, step=1)
        lw.log_text("hello", "notes/hello.txt")
    history = lw.get_metric_history("calm-tiger-826", "loss")
    assert history["value"].tolist() == [0.5, 0.25]
    assert [a.path for a in lw.list_artifacts("calm-tiger-826", "notes")] == ["notes/hello.txt"]
    copied = lw.download_artifacts("calm-tiger-826", "notes/hello.txt", tmp_path / "out")
    assert copied.read_text() == "hello"
    assert lw.get_metric_history(run.id, "loss")["value"].tolist() == [0.5, 0.25]
