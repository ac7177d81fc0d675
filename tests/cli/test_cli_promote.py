"""``loopwise models promote``: exit 0 when promoted, 1 when a gate refuses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from loopwise import context
from loopwise.cli.main import app


@pytest.fixture
def setup(store_url, tmp_path):
    import loopwise as lw

    rng = np.random.default_rng(0)
    n = 1500
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(5e4, 1.5e4, n),
            "region": rng.choice(["north", "south"], n),
        }
    )
    frame["y"] = (((frame.age - 45) / 15 + (frame.income - 5e4) / 1.5e4) > 0).astype(int)
    lw.configure(
        store_url=store_url, artifacts_url=str(tmp_path / "a"), cache_dir=str(tmp_path / "c")
    )
    model = LogisticRegression(max_iter=1000).fit(frame[["age", "income"]], frame.y)
    lw.log_model(model, name="credit-risk", input_example=frame[["age", "income"]][:3])
    context.reset()
    frame.to_parquet(tmp_path / "holdout.parquet")
    (tmp_path / "ok.yaml").write_text("thresholds: {roc_auc: 0.7}\n")
    (tmp_path / "strict.yaml").write_text("slices: {columns: [region], max_gap: {recall: 0.0}}\n")
    yield tmp_path
    old = context.reset()
    if old is not None:
        old.db.engine.dispose()


def _run(store_url, tmp_path, policy, *extra):
    return CliRunner().invoke(
        app,
        [
            "--store-url", store_url, "--artifacts-url", str(tmp_path / "a"),
            "models", "promote", "credit-risk/1", "--alias", "champion",
            "--policy", str(tmp_path / policy), "--data", str(tmp_path / "holdout.parquet"),
            "--target", "y", *extra,
        ],
        env={"COLUMNS": "200", "LOOPWISE_CACHE_DIR": str(tmp_path / "c")},
    )  # fmt: skip


def test_refused_then_promoted(store_url, setup):
    refused = _run(store_url, setup, "strict.yaml")
    assert refused.exit_code == 1, refused.output
    assert "refused for @champion" in refused.output
    assert "region=north" in refused.output
    promoted = _run(store_url, setup, "ok.yaml", "--json")
    assert promoted.exit_code == 0, promoted.output
    decision = json.loads(promoted.stdout)
    assert decision["passed"] is True
    assert decision["move"]["to_version"] == 1


def test_bad_policy_is_a_clear_error(store_url, setup):
    (setup / "typo.yaml").write_text("threshold: {roc_auc: 0.7}\n")
    result = _run(store_url, setup, "typo.yaml")
    assert result.exit_code == 1
    assert "threshold" in result.output
