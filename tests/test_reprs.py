"""The reprs of what the public API returns fit on a line and say what the object is:
``DatasetVersion`` (uri, rows, columns, id), a promotion ``Decision`` (passed or refused,
the failed checks by name) and ``model_lineage`` (version, run, counts) -- never a profile,
a frame or a run's whole environment. The repr does not depend on the backend: SQLite only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

FEATURES = [f"f{i}" for i in range(30)]
MAX_REPR = 200  # one line in a notebook or a log


@pytest.fixture
def store_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/loopwise.db"


def _data(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    frame["region"] = rng.choice(["north", "south", "east"], n)
    frame["y"] = (frame["f0"] + frame["f1"] + rng.normal(0, 0.5, n) > 0).astype(int)
    return frame


def _one_short_line(text: str, limit: int = MAX_REPR) -> None:
    assert "\n" not in text, text
    assert len(text) <= limit, f"{len(text)} characters: {text[:300]}..."


def _register(lw, frame: pd.DataFrame) -> int:
    with lw.start_run(experiment="reprs", name="train-reprs") as run:
        lw.log_dataset(frame, name="loans")
        model = LogisticRegression(max_iter=1000).fit(frame[FEATURES], frame["y"])
        version = lw.log_model(model, name="credit-risk", input_example=frame[FEATURES][:5])
    return version.version, run.id


def test_dataset_version_repr_names_it_without_its_profile(lw):
    frame = _data()
    logged = lw.log_dataset(frame, name="loans")
    assert logged.profile is not None  # what the default repr printed in full
    for found in (logged, lw.get_dataset_version("datasets:/loans/1")):
        text = repr(found)
        _one_short_line(text)
        assert text == f"DatasetVersion(datasets:/loans/1, rows=600, columns=32, id={found.id!r})"


def test_decision_repr_says_passed_or_refused_and_names_failed_checks(lw):
    version, _ = _register(lw, _data())
    easy = {"task": "classification", "thresholds": {"roc_auc": 0.6}}
    passed = lw.promote(
        f"models:/credit-risk/{version}", alias="champion", policy=easy, data=_data(seed=1),
        target="y",
    )  # fmt: skip
    assert passed.passed
    text = repr(passed)
    _one_short_line(text)
    assert text == "Decision(models:/credit-risk/1 promoted to @champion, 1/1 checks passed)"

    strict = {
        "task": "classification",
        "thresholds": {"roc_auc": 0.999, "recall": 0.999, "precision": 0.999, "f1": 0.999},
        "slices": {"columns": ["region"], "min": {"recall": 0.999}, "min_rows": 30},
        "max_size_mb": 50,
    }
    refused = lw.promote(
        f"models:/credit-risk/{version}", alias="challenger", policy=strict, data=_data(seed=2),
        target="y",
    )  # fmt: skip
    assert not refused.passed
    failed = refused.failed_checks
    assert len(failed) >= 5  # more than the repr names
    text = repr(refused)
    _one_short_line(text, 300)
    assert text.startswith("Decision(models:/credit-risk/1 refused for @challenger, ")
    assert f"{len(refused.checks) - len(failed)}/{len(refused.checks)} checks passed" in text
    assert "failed: threshold:roc_auc, threshold:recall" in text
    assert f"and {len(failed) - 4} more)" in text
    assert "model_size" not in text  # passed: not named
    assert "0.999" not in text  # the figures stay in summary() and to_dict()


def test_model_lineage_repr_counts_what_is_behind_the_version(lw):
    version, run_id = _register(lw, _data())
    lineage = lw.model_lineage(f"models:/credit-risk/{version}")
    assert lineage.run is not None
    assert lineage.run.environment  # what the default repr dumped, with params and metrics
    text = repr(lineage)
    _one_short_line(text)
    assert text == (
        f"ModelLineage(models:/credit-risk/1, run='train-reprs' ({run_id}), datasets=1, "
        "evaluations=0)"
    )
