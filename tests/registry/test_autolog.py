"""Autolog: scikit-learn's fit inside a run records params, training metrics and the model."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


@pytest.fixture
def autologged(lw, caplog):
    lw.autolog(registered_model_name="auto-model")
    caplog.set_level(logging.WARNING, logger="loopwise.autolog")
    yield lw
    lw.autolog(disable=True)


def _versions(lw, name="auto-model"):
    try:
        return lw.list_model_versions(name)
    except lw.NotFound:
        return []


def _autolog_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "loopwise.autolog"]


def test_fit_in_a_run_logs_params_metrics_and_model(autologged, caplog):
    lw = autologged
    X, y = make_classification(n_samples=300, random_state=0)
    with lw.start_run(experiment="auto") as run:
        make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(X, y)
    got = lw.get_run(run.id)
    assert got.params["estimator"] == "Pipeline"
    assert got.params["logisticregression__C"] == "0.5"  # scikit-learn's own spelling
    assert got.params["logisticregression"] == "LogisticRegression(C=0.5)"
    assert got.metrics["training_accuracy"] > 0.8
    assert got.metrics["training_roc_auc"] > 0.8
    version = lw.get_model_version("models:/auto-model@latest")
    assert version.run_id == run.id
    assert len(_versions(lw)) == 1  # the steps' own fits are not registered
    assert _autolog_warnings(caplog) == []
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
    from sklearn.model_selection import GridSearchCV

    originals = [cls.fit for cls in (LogisticRegression, RandomForestClassifier, GridSearchCV)]
    lw.autolog(log_models=False)
    assert LogisticRegression.fit is not originals[0]
    assert RandomForestClassifier.fit is not originals[1]  # inherited from BaseForest
    assert GridSearchCV.fit is not originals[2]  # inherited from BaseSearchCV
    lw.autolog(disable=True)
    assert [cls.fit for cls in (LogisticRegression, RandomForestClassifier, GridSearchCV)] == (
        originals
    )


# -- searches: one run, the best candidate, the refit model only --------------------------


def _data():
    return make_classification(n_samples=240, n_features=8, flip_y=0.05, random_state=0)


def _pipe():
    return Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])


def _cv_table(lw, run_id, tmp_path):
    return pd.read_csv(lw.download_artifacts(run_id, "cv_results.csv", tmp_path / "dl"))


def test_grid_search_is_one_run_with_the_best_candidate(autologged, caplog, tmp_path):
    from sklearn.model_selection import GridSearchCV

    lw = autologged
    X, y = _data()
    grid = [0.0001, 0.01, 1.0]
    with lw.start_run(experiment="search") as run:
        search = GridSearchCV(_pipe(), {"clf__C": grid}, cv=3).fit(X, y)
    assert search.best_params_["clf__C"] != grid[0]  # the first candidate is not the best

    got = lw.get_run(run.id)
    assert got.params["clf__C"] == str(search.best_params_["clf__C"])
    assert got.params["estimator"] == "Pipeline"
    assert got.params["search"] == "GridSearchCV"
    assert got.params["search_candidates"] == "3"
    assert got.params["search_folds"] == "3"
    assert got.params["search_refit"] == "True"
    assert got.params["scaler__with_mean"] == "True"
    assert got.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert got.metrics["cv_mean_test_score"] == pytest.approx(search.best_score_)
    best = search.best_index_
    assert got.metrics["cv_std_test_score"] == pytest.approx(
        search.cv_results_["std_test_score"][best]
    )
    assert got.metrics["training_accuracy"] == pytest.approx(search.best_estimator_.score(X, y))

    table = _cv_table(lw, run.id, tmp_path)
    assert sorted(table["param_clf__C"]) == grid
    assert list(table["mean_test_score"]) == pytest.approx(
        list(search.cv_results_["mean_test_score"])
    )
    assert "params" not in table.columns

    versions = _versions(lw)
    assert len(versions) == 1  # not one per candidate, fold and refit
    assert versions[0].run_id == run.id
    loaded = lw.load_model(versions[0].uri)
    assert (loaded.predict(X[:20]) == search.best_estimator_.predict(X[:20])).all()
    assert len(lw.search_runs(experiment="search")) == 1  # no child runs
    assert _autolog_warnings(caplog) == []  # no "cannot change it"


@pytest.mark.parametrize("kind", ["randomized", "halving-grid", "halving-random"])
def test_other_searches_are_one_run_too(autologged, caplog, tmp_path, kind):
    from scipy.stats import loguniform
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.model_selection._search_successive_halving import (
        HalvingGridSearchCV,
        HalvingRandomSearchCV,
    )

    lw = autologged
    X, y = _data()
    space = {"clf__C": loguniform(1e-4, 10)}
    search = {
        "randomized": RandomizedSearchCV(_pipe(), space, n_iter=4, cv=3, random_state=0),
        "halving-grid": HalvingGridSearchCV(_pipe(), {"clf__C": [1e-4, 0.01, 1.0, 10]}, cv=3),
        "halving-random": HalvingRandomSearchCV(_pipe(), space, n_candidates=4, random_state=0),
    }[kind]
    with lw.start_run(experiment="search") as run:
        search.fit(X, y)
    got = lw.get_run(run.id)
    assert got.params["clf__C"] == str(search.best_params_["clf__C"])
    assert got.params["search"] == type(search).__name__
    assert got.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert len(_cv_table(lw, run.id, tmp_path)) == len(search.cv_results_["params"])
    assert len(_versions(lw)) == 1
    assert _autolog_warnings(caplog) == []


def test_search_without_refit_registers_nothing(autologged, caplog, tmp_path):
    from sklearn.model_selection import GridSearchCV

    lw = autologged
    X, y = _data()
    with lw.start_run(experiment="search") as single:
        search = GridSearchCV(_pipe(), {"clf__C": [0.01, 1.0]}, cv=3, refit=False).fit(X, y)
    with lw.start_run(experiment="search") as multi:
        GridSearchCV(
            _pipe(), {"clf__C": [0.01, 1.0]}, cv=3, scoring=["accuracy", "roc_auc"], refit=False
        ).fit(X, y)
    assert _versions(lw) == []
    got = lw.get_run(single.id)
    assert got.params["clf__C"] == str(search.best_params_["clf__C"])  # known without refit
    assert got.params["search_refit"] == "False"
    assert got.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert "training_accuracy" not in got.metrics
    got = lw.get_run(multi.id)
    assert "clf__C" not in got.params  # no best candidate: each C is in the table
    assert got.params["clf__max_iter"] == "500"
    assert "best_cv_score" not in got.metrics
    assert set(_cv_table(lw, multi.id, tmp_path)["param_clf__C"]) == {0.01, 1.0}
    assert _autolog_warnings(caplog) == []


def test_fits_on_worker_threads_belong_to_the_outer_fit(autologged, caplog):
    from joblib import parallel_backend
    from sklearn.ensemble import VotingClassifier
    from sklearn.model_selection import GridSearchCV

    lw = autologged
    X, y = _data()
    with lw.start_run(experiment="search") as run, parallel_backend("threading", n_jobs=2):
        search = GridSearchCV(_pipe(), {"clf__C": [0.0001, 0.01, 1.0]}, cv=3, n_jobs=2)
        search.fit(X, y)
    assert lw.get_run(run.id).params["clf__C"] == str(search.best_params_["clf__C"])
    assert len(_versions(lw)) == 1
    members = [
        ("a", _pipe()),
        ("b", LogisticRegression(C=0.1)),
        ("c", RandomForestClassifier(n_estimators=3, random_state=0)),
    ]
    with lw.start_run(experiment="vote") as run, parallel_backend("threading", n_jobs=3):
        VotingClassifier(members, n_jobs=3).fit(X, y)  # members fit on worker threads
    assert lw.get_run(run.id).params["estimator"] == "VotingClassifier"
    assert len(_versions(lw)) == 2
    assert _autolog_warnings(caplog) == []


def test_cross_validation_helpers_record_nothing(autologged, caplog):
    from sklearn.model_selection import cross_val_predict, cross_val_score, cross_validate

    lw = autologged
    X, y = _data()
    with lw.start_run(experiment="cv") as run:
        cross_val_score(_pipe(), X, y, cv=3)
        cross_validate(_pipe(), X, y, cv=3)
        cross_val_predict(_pipe(), X, y, cv=3)
    got = lw.get_run(run.id)
    assert got.params == {}
    assert got.metrics == {}
    assert _versions(lw) == []
    with lw.start_run(experiment="cv") as run:
        cross_val_score(_pipe(), X, y, cv=3)
        _pipe().fit(X, y)  # the fit the user makes is recorded, once
    assert lw.get_run(run.id).params["clf__max_iter"] == "500"
    assert len(_versions(lw)) == 1
    assert _autolog_warnings(caplog) == []


def test_estimators_with_an_inherited_fit_are_recorded(autologged):
    lw = autologged
    X, y = _data()
    with lw.start_run(experiment="forest") as run:
        RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    got = lw.get_run(run.id)
    assert got.params["estimator"] == "RandomForestClassifier"
    assert got.params["n_estimators"] == "5"
    assert got.metrics["training_accuracy"] > 0.9
    assert len(_versions(lw)) == 1


def test_strict_key_rule_joins_nested_names_with_a_slash(autologged, caplog, tmp_path):
    from loopwise import context

    lw = autologged
    (tmp_path / "loopwise.toml").write_text('key_rule = "snake_case"\n')  # cwd is tmp_path
    lw.configure(store_url=context.get_store().settings.store_url)
    X, y = _data()
    pipe = Pipeline([("scaler", StandardScaler()), ("logReg", LogisticRegression(C=0.5))])
    with lw.start_run(experiment="strict") as run:
        pipe.fit(X, y)
    params = lw.get_run(run.id).params
    assert params["scaler/with_mean"] == "True"
    assert not any(key.startswith("logReg") for key in params)  # snake_case refuses them
    assert params["estimator"] == "Pipeline"
    (warning,) = _autolog_warnings(caplog)
    assert "skipped 15 params whose keys the naming rule 'snake_case' refuses: logReg" in warning
    assert len(_versions(lw)) == 1


def test_non_scalar_values_are_one_line_reprs_cut_short():
    from sklearn.compose import ColumnTransformer

    from loopwise.registry import autolog

    columns = [f"feature_{i:03d}" for i in range(300)]
    prep = ColumnTransformer([("num", StandardScaler(), columns)])
    assert autolog._value(prep.transformers).startswith("[('num', StandardScaler(), ['feature_000'")
    assert len(autolog._value(prep.transformers)) == autolog.MAX_REPR
    assert autolog._value(prep.transformers).endswith("...")
    assert autolog._value((100, 50)) == "(100, 50)"
    assert autolog._value(np.float32(0.5)) == 0.5
    assert autolog._value(np.mean) == "<function mean>"  # no memory address
