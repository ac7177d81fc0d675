"""Logging what libraries produce: the default key rule takes their keys (strict is an
opt-in), and their NumPy values are stored as plain numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def test_pipeline_get_params_and_library_keys_log_by_default(lw):
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5))
    with lw.start_run(experiment="keys") as run:
        lw.log_params(pipe.get_params())
        lw.log_param("learningRate", 0.1)
        lw.log_metrics({"f1 (macro)": 0.8, "lr-Adam": 1e-3, "val/loss": 0.3, "train.loss": 0.2})
        lw.set_tag("validation_0-logloss", "xgboost")
    params = lw.get_run(run.id).params
    assert params["standardscaler__copy"] == "True"
    assert params["logisticregression__C"] == "0.5"
    assert params["memory"] == "None"
    assert params["learningRate"] == "0.1"
    # Estimator objects among get_params values are logged as their repr.
    assert params["logisticregression"] == "LogisticRegression(C=0.5)"
    assert json.loads(params["steps"]) == [
        ["standardscaler", "StandardScaler()"],
        ["logisticregression", "LogisticRegression(C=0.5)"],
    ]
    found = lw.search_runs(experiment="keys", filter='metrics."f1 (macro)" > 0.5')
    assert list(found["run_id"]) == [run.id]
    found = lw.search_runs(
        experiment="keys",
        filter="params.logisticregression__C = '0.5' and metrics.`lr-Adam` < 0.01",
        order_by=["metrics.`val/loss` DESC"],
    )
    assert list(found["run_id"]) == [run.id]


def test_default_still_refuses_keys_that_break_display(lw):
    with lw.start_run(experiment="keys"):
        with pytest.raises(lw.InvalidInput, match=r"Use 'loss' instead\."):
            lw.log_metric("loss ", 1.0)
        with pytest.raises(lw.InvalidInput, match=r"Use 'val loss' instead\."):
            lw.log_param("val\nloss", 1)
        with pytest.raises(lw.InvalidInput, match="Choose a key that does"):
            lw.set_tag("", "x")


def test_strict_rule_is_an_opt_in_in_loopwise_toml(lw, tmp_path):
    from loopwise import context

    (tmp_path / "loopwise.toml").write_text('key_rule = "snake_case"\n')  # cwd is tmp_path
    lw.configure(store_url=context.get_store().settings.store_url)
    with lw.start_run(experiment="strict"):
        with pytest.raises(lw.InvalidInput, match="Use 'learning_rate' instead"):
            lw.log_param("learningRate", 0.1)
        with pytest.raises(lw.InvalidInput, match="naming rule 'snake_case'"):
            lw.log_metric("f1 (macro)", 0.5)
        lw.log_param("learning_rate", 0.1)


def test_numpy_values_are_stored_as_plain_numbers(lw):
    with lw.start_run(experiment="keys") as run:
        lw.log_params({"clf__C": np.float64(0.25), "n": np.int64(3), "flag": np.bool_(True)})
    assert lw.get_run(run.id).params == {"clf__C": "0.25", "n": "3", "flag": "True"}
