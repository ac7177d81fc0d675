"""Pipelines end to end on each metadata backend: steps recorded as child runs, outputs
stored by type, the cache, failures, resume, retries and the executors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from tests.pipelines import steps


def test_a_step_outside_a_pipeline_is_a_function(lw):
    assert steps.add(1.0, 2.0) == 3.0
    assert isinstance(steps.load(5), pd.DataFrame)


def test_a_run_records_every_step_and_stores_outputs_by_type(lw):
    run = lw.run_pipeline(steps.churn, params={"rows": 300, "C": 0.5})
    assert run.status.value == "FINISHED"
    assert [s.name for s in run.steps] == ["load", "train", "score"]
    assert all(s.status == "SUCCEEDED" and not s.cached for s in run.steps)
    out = run.output()
    assert isinstance(out["model"], LogisticRegression)
    assert out["scores"]["rows"] == 300
    assert out["scores"]["accuracy"] > 0.9

    # the pipeline run is a tracking run, its steps child runs with their params
    parent = lw.get_run(run.id)
    assert parent.params == {"rows": "300", "C": "0.5"}
    assert parent.tags["loopwise.pipeline"] == "churn-train"
    assert parent.metrics["score.accuracy"] == out["scores"]["accuracy"]
    train = lw.get_run(run.step("train").run_id)
    assert train.parent_run_id == run.id
    assert train.params == {"C": "0.5"}
    assert train.status.value == "FINISHED"
    assert lw.get_run(run.step("score").run_id).metrics["accuracy"] == out["scores"]["accuracy"]

    # a frame became a dataset version, the model a model version linked to both
    assert run.step("load").outputs["kind"] == "dataset:pandas"
    data = lw.load_dataset(run.step("load").outputs["ref"])
    assert len(data) == 300
    assert list(data.columns) == [*steps.FEATURES, "label"]
    version = lw.get_model_version(run.step("train").outputs["ref"])
    assert version.name == "churn-train-train"
    assert version.run_id == train.id
    lineage = lw.model_lineage(version.uri)
    assert [d.uri for d in lineage.datasets] == [run.step("load").outputs["ref"]]
    assert lineage.run.parent_run_id == run.id
    assert lineage.run.tags["loopwise.step"] == "train"
    loaded = lw.load_model(version.uri)
    assert loaded.signature is not None
    assert [c["name"] for c in loaded.signature.to_dict()["inputs"]] == steps.FEATURES

    # read back from the store, in a "new process": output() loads what was stored
    again = lw.get_pipeline_run(run.id)
    assert again.output()["scores"] == out["scores"]
    assert again.output()["model"].coef_.tolist() == out["model"].coef_.tolist()


def test_the_second_run_comes_from_the_cache(lw):
    first = lw.run_pipeline(steps.churn, params={"rows": 200})
    versions = len(lw.list_model_versions("churn-train-train"))
    second = lw.run_pipeline(steps.churn, params={"rows": 200})
    assert [s.cached for s in second.steps] == [True, True, True]
    assert [s.cached_from for s in second.steps] == [s.run_id for s in first.steps]
    assert second.output()["scores"] == first.output()["scores"]
    # a cached step's numbers are metrics of its run and the pipeline's, as when it ran
    accuracy = first.output()["scores"]["accuracy"]
    assert lw.get_run(second.id).metrics["score.accuracy"] == accuracy
    assert lw.get_run(second.step("score").run_id).metrics["accuracy"] == accuracy
    assert (
        lw.get_run(second.step("score").run_id).tags["loopwise.cached_from"]
        == first.step("score").run_id
    )
    assert len(lw.list_model_versions("churn-train-train")) == versions  # nothing new stored
    # a changed parameter re-runs the steps it reaches, not the others
    third = lw.run_pipeline(steps.churn, params={"rows": 200, "C": 0.01})
    assert [s.cached for s in third.steps] == [True, False, False]
    # cache=False runs everything
    fourth = lw.run_pipeline(steps.churn, params={"rows": 200}, cache=False)
    assert [s.cached for s in fourth.steps] == [False, False, False]


def _pipeline_with(lw, b_version: str, b_factor: float):
    """a -> b -> c and an independent d, where b's code is (version, factor)."""

    @lw.step(name="a")
    def a() -> float:
        return 2.0

    def b_code(x: float) -> float:
        return x * b_factor

    b = lw.step(name="b", version=b_version)(b_code)

    @lw.step(name="c")
    def c(x: float) -> float:
        return x + 1

    @lw.step(name="d")
    def d() -> str:
        return "independent"

    @lw.pipeline(name="versions")
    def p():
        return c(b(a())), d()

    return p


def test_changing_one_steps_code_reruns_it_and_what_its_new_output_reaches(lw):
    lw.run_pipeline(_pipeline_with(lw, "1", 3.0))
    same = lw.run_pipeline(_pipeline_with(lw, "1", 3.0))
    assert [s.cached for s in same.steps] == [True, True, True, True]
    # b's version bumped, same output: only b runs (c's input content is unchanged)
    bumped = lw.run_pipeline(_pipeline_with(lw, "2", 3.0))
    assert {s.name: s.cached for s in bumped.steps} == {"a": True, "b": False, "c": True, "d": True}
    # b's code changed its output: b and c run, a and d come from the cache
    changed = lw.run_pipeline(_pipeline_with(lw, "3", 5.0))
    assert {s.name: s.cached for s in changed.steps} == {
        "a": True,
        "b": False,
        "c": False,
        "d": True,
    }
    assert changed.output() == (11.0, "independent")


def test_a_failed_step_skips_what_needs_it_and_resume_reuses_what_succeeded(lw, tmp_path):
    flag = tmp_path / "broken"
    flag.write_text("up")
    failed = lw.run_pipeline(steps.breakable, params={"flag": str(flag)}, cache=False)
    assert failed.status.value == "FAILED"
    status = {s.name: s.status for s in failed.steps}
    assert status == {
        "divide": "SUCCEEDED",
        "fragile": "FAILED",
        "divide-2": "SUCCEEDED",
        "add": "SKIPPED",
    }
    broken = failed.step("fragile")
    assert "RuntimeError: flag" in broken.error
    assert "Traceback" in broken.error
    assert lw.get_run(broken.run_id).status.value == "FAILED"
    assert lw.get_run(broken.run_id).tags["loopwise.error"].startswith("RuntimeError")
    assert failed.step("add").run_id is None
    assert "fragile failed" in failed.step("add").error
    assert lw.get_run(failed.id).status.value == "FAILED"
    with pytest.raises(lw.InvalidInput, match="FAILED"):
        failed.output()

    flag.unlink()  # the "fix"
    resumed = lw.resume_pipeline(failed.id)
    assert resumed.resumed_from == failed.id
    assert resumed.status.value == "FINISHED"
    by_name = {s.name: s for s in resumed.steps}
    assert by_name["divide"].cached_from == failed.step("divide").run_id
    assert by_name["divide-2"].cached_from == failed.step("divide-2").run_id
    assert not by_name["fragile"].cached
    assert not by_name["add"].cached
    assert resumed.output() == (4.25, 0.25)
    with pytest.raises(lw.InvalidInput, match="nothing to resume"):
        lw.resume_pipeline(resumed.id)


def test_a_step_is_retried(lw, tmp_path):
    run = lw.run_pipeline(steps.retrying, params={"counter": str(tmp_path / "n")})
    assert run.status.value == "FINISHED"
    assert run.step("flaky").attempts == 2
    assert run.output() == 2


def test_independent_steps_run_in_parallel(lw):
    run = lw.run_pipeline(steps.naps, params={"seconds": 0.5}, cache=False)
    assert run.status.value == "FINISHED"
    left, right = (lw.get_run(run.step(name).run_id) for name in ("nap", "nap-2"))
    # the two 0.5 s naps overlap: each started before the other ended
    assert left.start_time < right.end_time
    assert right.start_time < left.end_time
    assert run.step("both").duration_s < 0.5


def test_other_values_are_pickled_as_artifacts(lw):
    run = lw.run_pipeline(steps.boxes, params={"n": 5})
    assert run.step("boxed").outputs["kind"] == "pickle"
    assert run.output() == 10
    assert lw.get_pipeline_run(run.id).value("boxed") == steps.Box((0, 1, 2, 3, 4))
    cached = lw.run_pipeline(steps.boxes, params={"n": 5})
    assert [s.cached for s in cached.steps] == [True, True]


def test_local_processes_run_the_steps(lw):
    import os

    run = lw.run_pipeline(steps.pids, executor="processes", max_workers=2, cache=False)
    assert run.status.value == "FINISHED"
    assert os.getpid() not in run.output()
    trained = lw.run_pipeline(steps.churn, params={"rows": 150}, executor="processes")
    assert trained.status.value == "FINISHED"
    assert isinstance(trained.output()["model"], LogisticRegression)


def test_pipelines_are_listed_and_known_by_name(lw):
    run = lw.run_pipeline(steps.chain, params={"length": 5})
    assert run.output() == 5
    names = {p.name: p for p in lw.list_pipelines()}
    assert names["chain"].entrypoint == "tests.pipelines.steps:chain"
    assert names["chain"].runs == 1
    assert names["chain"].last_status == "FINISHED"
    assert [r.id for r in lw.list_pipeline_runs("chain")] == [run.id]


def test_mistakes_are_named(lw):
    with pytest.raises(lw.InvalidInput, match="run_pipeline"):
        steps.churn(rows=3)
    with pytest.raises(lw.InvalidInput, match="parameters: rows, C"):
        lw.run_pipeline(steps.churn, params={"rowz": 3})
    with pytest.raises(lw.InvalidInput, match="not a pipeline"):
        lw.run_pipeline("tests.pipelines.steps:load")

    @lw.pipeline
    def bad():
        return steps.add(1.0)

    @lw.pipeline
    def branching():
        if steps.inc(1):
            return steps.inc(2)
        return None

    @lw.pipeline
    def empty():
        return 1

    with pytest.raises(lw.InvalidInput, match="wrong arguments"):
        lw.run_pipeline(bad)
    with pytest.raises(lw.InvalidInput, match="branch inside a step"):
        lw.run_pipeline(branching)
    with pytest.raises(lw.InvalidInput, match="calls no step"):
        lw.run_pipeline(empty)
    with pytest.raises(lw.InvalidInput, match="Unknown executor"):
        lw.run_pipeline(steps.chain, executor="gpu-farm")
    with pytest.raises(lw.InvalidInput, match="Unknown resource"):
        lw.step(resources={"tpus": 1})(lambda: 1)
    plain = lw.start_run()
    plain.end()
    with pytest.raises(lw.NotFound, match="not a pipeline run"):
        lw.get_pipeline_run(plain.id)


def test_the_cli_runs_shows_lists_and_resumes(invoke, tmp_path):
    flag = tmp_path / "broken"
    flag.write_text("up")
    entry = f"{Path(steps.__file__)}:breakable"
    failed = invoke("pipelines", "run", entry, "--param", f"flag={flag}", "--json")
    assert failed.exit_code == 1
    import json

    body = json.loads(failed.stdout[: failed.stdout.rindex("}") + 1])
    assert body["status"] == "FAILED"
    run_id = body["id"]
    shown = invoke("pipelines", "show", run_id)
    assert shown.exit_code == 0
    assert "fragile failed" in shown.stdout
    assert "RuntimeError" in shown.stdout
    flag.unlink()
    resumed = invoke("pipelines", "resume", run_id)
    assert resumed.exit_code == 0, resumed.output
    assert "FINISHED" in resumed.stdout
    assert f"resumed from {run_id}" in resumed.stdout
    listed = invoke("pipelines", "list")
    assert "breakable" in listed.stdout
    assert "FINISHED" in listed.stdout
    # by name once it has run, with JSON-read parameters
    again = invoke("pipelines", "run", "breakable", "-p", f"flag={flag}", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["params"] == {"flag": str(flag)}
    runs = invoke("pipelines", "runs", "breakable")
    assert runs.stdout.count("breakable") == 3
    unknown = invoke("pipelines", "run", "no-such-pipeline")
    assert unknown.exit_code == 1
    assert "No pipeline named 'no-such-pipeline'" in unknown.output
    building = invoke("pipelines", "run", "tests.pipelines.steps:chain", "-p", "length=NaN")
    assert building.exit_code == 1
    assert "failed while building its graph" in building.output
    assert "Traceback" not in building.output
    deep = invoke("pipelines", "run", "breakable", "-p", "flag=" + "[" * 5000 + "]" * 5000)
    assert deep.exit_code == 1
    assert "nested too deeply" in deep.output
    bad = invoke("pipelines", "run", "breakable", "-p", "flag")
    assert bad.exit_code == 1
    assert "not key=value" in bad.output


def test_a_slow_step_is_visible_while_it_runs(lw):
    import threading
    import time

    from loopwise.pipelines.records import list_pipeline_runs

    store = lw.get_store()
    done: list = []
    worker = threading.Thread(
        target=lambda: done.append(
            lw.run_pipeline(steps.naps, params={"seconds": 1.5}, cache=False)
        )
    )
    worker.start()
    seen = []
    deadline = time.monotonic() + 10
    # both steps run at once; each writes its RUNNING record from its own thread, so one
    # may be seen a poll before the other: poll until both are (or the run ends)
    while worker.is_alive() and time.monotonic() < deadline and len(seen) < 2:
        for run in list_pipeline_runs(store, "naps"):
            seen = [s for s in lw.get_pipeline_run(run.id).steps if s.status == "RUNNING"]
        time.sleep(0.1)
    worker.join()
    assert {s.name for s in seen} == {"nap", "nap-2"}
    assert all(s.run_id is not None and s.duration_s is None for s in seen)
    run = done[0]
    assert run.status.value == "FINISHED"
    assert {s.name: s.status for s in run.steps} == {
        "nap": "SUCCEEDED",
        "nap-2": "SUCCEEDED",
        "both": "SUCCEEDED",
    }


def test_with_a_tracking_url_pipelines_refuse_rather_than_write_elsewhere(lw, invoke):
    lw.configure(tracking_url="http://127.0.0.1:9")
    with pytest.raises(lw.ConfigurationError, match="LOOPWISE_TRACKING_URL"):
        lw.run_pipeline(steps.chain, params={"length": 2})
    refused = invoke("pipelines", "list", env={"LOOPWISE_TRACKING_URL": "http://127.0.0.1:9"})
    assert refused.exit_code == 1
    assert "LOOPWISE_TRACKING_URL" in refused.output


def test_two_failed_parents_skip_their_child_once_and_a_step_that_cannot_start_fails(lw):
    run = lw.run_pipeline(steps.two_failures)
    assert run.status.value == "FAILED"
    status = {s.name: s.status for s in run.steps}
    assert status == {
        "boom": "FAILED",
        "boom-2": "FAILED",
        "add": "SKIPPED",
        "divide": "SUCCEEDED",
        "model_of": "FAILED",
        "divide-2": "SUCCEEDED",
    }
    assert "takes a ModelVersion" in run.step("model_of").error
    assert lw.get_run(run.id).status.value == "FAILED"
