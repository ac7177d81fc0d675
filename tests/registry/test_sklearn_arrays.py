"""Models fitted on DataFrames predict on arrays where that is safe, with identical results
and no feature-name warnings; pipelines that pick columns by name keep their DataFrames."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopwise.registry.flavors import sklearn as flavor


def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 4)), columns=["d", "a", "c", "b"])
    return X, (X["a"] - X["d"] > 0).astype(int).to_numpy()


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomForestClassifier(n_estimators=10, random_state=0),
        lambda: LogisticRegression(),
        lambda: make_pipeline(
            make_column_transformer((StandardScaler(), ["a", "d"]), remainder="drop"),
            LogisticRegression(),
        ),
    ],
)
def test_array_input_gives_the_dataframe_answers_without_warnings(make):
    X, y = data()
    model = make().fit(X, y)
    array = X.to_numpy()  # in fit order, as the signature check builds it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = flavor.predict(model, array)
        proba = flavor.predict_proba(model, array)
    assert (got == model.predict(X)).all()
    np.testing.assert_allclose(proba, model.predict_proba(X))
    assert list(model.feature_names_in_) == ["d", "a", "c", "b"]  # the original is untouched


def test_only_plain_estimators_get_the_nameless_copy():
    X, y = data()
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    assert flavor._array_model(forest) is not forest
    assert flavor._array_model(forest) is flavor._array_model(forest)  # cached
    assert flavor._array_model(pipeline) is pipeline
