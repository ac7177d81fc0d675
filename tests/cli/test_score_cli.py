"""``loopwise score`` through CliRunner, on SQLite and PostgreSQL: a scored file and a
summary line on success; ``Error: ...`` and exit code 1 (never a traceback) on bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import Result

FEATURES = ["income", "debt", "age"]
Invoke = Callable[..., Result]


@pytest.fixture
def data(lw, tmp_path: Path) -> pd.DataFrame:
    """credit-risk v1 (champion) registered; the frame written as in.parquet and in.csv."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(1_000, 3)), columns=FEATURES)
    y = (frame["income"] > frame["debt"]).astype(int)
    lw.log_model(LogisticRegression().fit(frame, y), "credit-risk", input_example=frame[:5])
    lw.set_alias("credit-risk", "champion", 1)
    frame["id"] = np.arange(len(frame))
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    frame.to_csv(tmp_path / "in.csv", index=False)
    return frame


def test_score_writes_the_file_and_a_summary(invoke, data, tmp_path):
    out = tmp_path / "out.parquet"
    result = invoke("score", "credit-risk@champion", str(tmp_path / "in.parquet"), str(out))
    assert result.exit_code == 0, result.output
    assert "Scored 1,000 rows with credit-risk/1" in result.stdout
    assert str(out) in result.stdout
    scored = pd.read_parquet(out)
    assert len(scored) == 1_000
    assert set(scored["model_version"]) == {"credit-risk/1"}

    csv_out = tmp_path / "out.csv"
    args = ["--chunk-rows", "300", "--proba"]
    result = invoke("score", "models:/credit-risk/1", str(tmp_path / "in.csv"), str(csv_out), *args)
    assert result.exit_code == 0, result.output
    assert "4 chunks" in result.stdout
    scored_csv = pd.read_csv(csv_out)
    assert {"proba_0", "proba_1"} <= set(scored_csv.columns)
    assert scored_csv["prediction"].tolist() == scored["prediction"].tolist()


def test_an_existing_output_needs_overwrite(invoke, data, tmp_path):
    out = tmp_path / "out.parquet"
    out.write_text("old")
    src = str(tmp_path / "in.parquet")
    refused = invoke("score", "credit-risk@champion", src, str(out))
    assert refused.exit_code == 1
    assert "Error: the output" in refused.output
    assert "--overwrite" in refused.output
    assert out.read_text() == "old"
    replaced = invoke("score", "credit-risk@champion", src, str(out), "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert len(pd.read_parquet(out)) == 1_000


def test_errors_exit_1_with_a_message(invoke, data, tmp_path):
    src, out = str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet")
    data.drop(columns="debt").to_parquet(tmp_path / "no-debt.parquet")
    cases = [
        (["credit-risk@champion", str(tmp_path / "missing.parquet"), out], "no source file"),
        (["models:/", src, out], "Error:"),
        (["credit-risk@prod", src, out], "no alias 'prod'"),
        (["nope@champion", src, out], "nope"),
        (["credit-risk@champion", str(tmp_path / "no-debt.parquet"), out], "'debt'"),
        (["credit-risk@champion", src, out, "--executor", "spark"], "'executor' parameter"),
        (["credit-risk@champion", src, out, "--chunk-rows", "0"], "'chunk_rows' parameter"),
        (["credit-risk@champion", src, out, "--ray-address", "auto"], "executor='ray'"),
        (["credit-risk@champion", src, str(tmp_path / "out.xlsx")], "format of the output"),
    ]
    for args, needle in cases:
        result = invoke("score", *args)
        assert result.exit_code == 1, (args, result.output)
        assert "Error:" in result.output, args
        assert needle in result.output, (args, result.output)
        assert "Traceback" not in result.output, args
    assert not Path(out).exists()
