"""The module-level registry API end to end: log, load, aliases, lineage, evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopwise.errors import InvalidInput, NotFound
from tests import helpers

pytestmark = pytest.mark.remote_conformance

stepped = helpers.stepped  # the fixture: a clock the tests step


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50_000, 15_000, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    score = (frame["age"] - 45) / 20 + (frame["income"] - 50_000) / 20_000
    frame["y"] = (score + rng.normal(0, 0.5, n) > 0).astype(int)
    return frame


def _fit(frame: pd.DataFrame, c: float = 1.0) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=1000).fit(frame[["age", "income"]], frame["y"])


def test_log_load_and_lineage(lw, data):
    with lw.start_run(experiment="credit") as run:
        lw.log_params({"C": 1.0})
        version = lw.log_dataset(data, name="loans")
        model = _fit(data)
        lw.log_metric("train_auc", 0.9)
        mv = lw.log_model(model, name="credit-risk", input_example=data[["age", "income"]][:5])
    assert mv.uri == "models:/credit-risk/1"
    assert mv.run_id == run.id
    assert mv.flavor == "sklearn"
    loaded = lw.load_model("models:/credit-risk/1")
    features = data[["age", "income"]]
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features))
    with pytest.raises(InvalidInput, match="income"):
        loaded.predict(data[["age"]])
    lineage = lw.model_lineage("models:/credit-risk/1")
    assert lineage.run.id == run.id
    assert lineage.run.params == {"C": "1.0"}
    assert lineage.run.metrics == {"train_auc": 0.9}
    assert [d.id for d in lineage.datasets] == [version.id]
    assert "python" in lineage.to_dict()["environment"]


def test_aliases_version_at_and_rollback(lw, data, stepped):
    lw.log_model(_fit(data, 0.1), name="credit-risk", input_example=data[["age", "income"]][:3])
    lw.log_model(_fit(data, 1.0), name="credit-risk", input_example=data[["age", "income"]][:3])
    lw.set_alias("credit-risk", "champion", 1, reason="first model")
    stepped.advance(1)
    middle = stepped.now()
    stepped.advance(1)
    lw.set_alias("credit-risk", "champion", 2, reason="better")
    champion = lw.get_model_version("models:/credit-risk@champion")
    assert champion.version == 2
    assert champion.aliases == ["champion"]
    assert lw.version_at("credit-risk", alias="champion", at=middle) == 1
    assert lw.load_model("models:/credit-risk@champion") is lw.load_model("models:/credit-risk/2")
    move = lw.rollback("credit-risk", alias="champion")
    assert (move.from_version, move.to_version) == (2, 1)
    assert lw.get_model_version("models:/credit-risk@champion").version == 1
    history = lw.alias_history("credit-risk", "champion")
    assert [h.kind for h in history] == ["set", "set", "rollback"]
    assert [m.name for m in lw.list_models()] == ["credit-risk"]
    assert len(lw.list_model_versions("credit-risk")) == 2


def test_alias_is_positional_or_keyword_in_every_registry_function(lw, data, stepped):
    import inspect

    from loopwise.registry import api, models, promotion

    for module, names in (
        (api, ("set_alias", "delete_alias", "alias_history", "version_at", "rollback", "promote")),
        (models, ("set_alias", "delete_alias", "alias_history", "version_at", "rollback")),
        (promotion, ("promote",)),
    ):
        for name in names:
            param = inspect.signature(getattr(module, name)).parameters["alias"]
            assert param.kind is param.POSITIONAL_OR_KEYWORD, (module.__name__, name)

    for _ in range(2):
        lw.log_model(_fit(data), name="m", input_example=data[["age", "income"]][:3])
    lw.set_alias("m", "champion", 1)
    lw.set_alias("m", alias="champion", version=2)
    stepped.advance(1)
    assert lw.version_at("m", "champion", stepped.now()) == 2
    assert lw.version_at("m", alias="champion", at=stepped.now()) == 2
    assert lw.rollback("m", "champion").to_version == 1
    assert [h.kind for h in lw.alias_history("m", alias="champion")] == ["set", "set", "rollback"]
    assert lw.delete_alias("m", alias="champion").to_version is None


def test_evaluate_stores_results_linked_to_version_and_dataset(lw, data):
    lw.log_dataset(data, name="holdout")
    lw.log_model(_fit(data), name="credit-risk", input_example=data[["age", "income"]][:3])
    evaluation = lw.evaluate(
        "models:/credit-risk/1",
        "datasets:/holdout@latest",
        target="y",
        slices=["region"],
    )
    assert evaluation.metrics["roc_auc"] > 0.7
    assert set(evaluation.slice_metrics["slice_value"]) == {"north", "south", "east"}
    lineage = lw.model_lineage("models:/credit-risk/1")
    assert len(lineage.evaluations) == 1
    assert lineage.evaluations[0]["metrics"]["roc_auc"] == pytest.approx(
        evaluation.metrics["roc_auc"]
    )


def test_registry_api_errors(lw, data):
    with pytest.raises(InvalidInput, match="Model name"):
        lw.log_model(_fit(data), name="Credit Risk")
    with pytest.raises(NotFound, match="No model named"):
        lw.load_model("models:/nope@champion")
    with pytest.raises(InvalidInput, match="models:/"):
        lw.model_lineage("credit-risk")
