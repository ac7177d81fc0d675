"""Autolog: scikit-learn's fit inside a run records params, training metrics and the model."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@pytest.fixture
def autologged(lw):
    lw.autolog(registered_model_name="auto-model")
    yield lw
    lw.autolog(disable=True)


def test_fit_in_a_run_logs_params_metrics_and_model(autologged):
    lw = autologged
    X, y = make_classification(n_samples=300, random_state=0)
    with lw.start_run(experiment="auto") as run:
        make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(X, y)
    got = lw.get_run(run.id)
    assert got.params["estimator"] == "Pipeline"
    assert got.params["logisticregression/C"] == "0.5"
    assert got.metrics["training_accuracy"] > 0.8
    assert got.metrics["training_roc_auc"] > 0.8
    version = lw.get_model_version("models:/auto-model@latest")
    assert version.run_id == run.id
    loaded = lw.load_model(version.uri)
    assert loaded.predict(X[:5]).shape == (5,)


def test_regressor_and_no_run(autologged):
    lw = autologged
    X = np.random.default_rng(0).normal(size=(100, 3))
    y = X @ [1.0, 2.0, 3.0]
    Ridge().fit(X, y)  # outside a run: nothing logged, nothing breaks
    with lw.start_run(experiment="auto") as run:
        Ridge(alpha=0.1).fit(X, y)
    assert lw.get_run(run.id).metrics["training_r2"] > 0.99


def test_disable_restores_fit(lw):
    original = LogisticRegression.fit
    lw.autolog(log_models=False)
    assert LogisticRegression.fit is not original
    lw.autolog(disable=True)
    assert LogisticRegression.fit is original
