"""Reading back what promotion stored: distinct evaluations, refused decisions and why.

Why: every promotion attempt stores the candidate's evaluation and its decision; the reads
must answer "why was version 2 refused" and list one evaluation per distinct result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopwise import context
from loopwise.registry.evaluations import stored_evaluations
from loopwise.registry.promotion_history import promotion_history

STRICT = {"thresholds": {"roc_auc": 0.999, "accuracy": 0.1}}


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 500
    data = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    data["y"] = (data["x1"] + rng.normal(0, 1.0, n) > 0).astype(int)
    return data


def test_promotion_attempts_read_back_once_each_with_why(lw, frame):
    model = LogisticRegression().fit(frame[["x1", "x2"]], frame["y"])
    for _ in range(2):
        lw.log_model(model, name="m", input_example=frame[["x1", "x2"]][:3])
    easy = {"thresholds": {"accuracy": 0.1}}
    assert lw.promote("models:/m/1", alias="champion", policy=easy, data=frame, target="y").passed
    for _ in range(3):
        refused = lw.promote("models:/m/2", alias="champion", policy=STRICT, data=frame, target="y")
        assert not refused.passed
    lw.log_dataset(frame, name="holdout")
    lw.promote("models:/m/2", alias="challenger", policy=STRICT, data="datasets:/holdout@latest",
               target="y")  # fmt: skip
    store = context.get_store()

    version = lw.get_model_version("models:/m/2")
    found = stored_evaluations(store, version.id)
    assert [(e.count, e.data) for e in found] == [
        (3, "unversioned data (500 rows)"),
        (1, "datasets:/holdout/1"),
    ]
    assert found[0].first_at <= found[0].last_at
    assert found[0].to_dict()["ids"] == list(found[0].ids)
    assert found[0].document["n"] == 500

    refused = promotion_history(store, "m", version=2, alias="champion")
    assert len(refused) == 3
    assert [r.current_version for r in refused] == [1, 1, 1]
    (check,) = refused[0].failed_checks
    assert check["name"] == "threshold:roc_auc"
    assert check["limit"] == 0.999
    assert check["value"] == pytest.approx(found[0].document["metrics"]["roc_auc"])
    assert "below the floor" in check["message"]
    assert refused[0].to_dict()["failed_checks"] == [check]
    assert [r.alias for r in promotion_history(store, "m", alias="challenger")] == ["challenger"]
    assert promotion_history(store, "m", alias="champion", version=1)[0].failed_checks == []
