"""``loopwise data`` and ``loopwise datasets``: files in, tables/JSON/HTML out, CI exit codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from loopwise import context


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000

    def frame(shift: float, mix: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "customer_id": np.arange(n) + int(shift * 1e6),
                "amount": rng.normal(100 + shift * 30, 10, n),
                "country": rng.choice(["GB", "FR", "DE"], n, p=mix),
                "label": rng.integers(0, 2, n),
            }
        )

    ref = frame(0.0, [0.5, 0.3, 0.2])
    ref.to_parquet(tmp_path / "ref.parquet")
    frame(0.0, [0.5, 0.3, 0.2]).to_csv(tmp_path / "same.csv", index=False)
    frame(1.0, [0.2, 0.3, 0.5]).to_parquet(tmp_path / "drifted.parquet")
    bad = ref.copy()
    bad.loc[:50, "country"] = "UK"
    bad.loc[60:70, "amount"] = None
    bad.to_parquet(tmp_path / "bad.parquet")
    return tmp_path


def test_profile(invoke, files):
    result = invoke("data", "profile", str(files / "ref.parquet"))
    assert result.exit_code == 0, result.output
    assert "3,000 rows × 4 columns" in result.output
    assert "amount" in result.output
    as_json = invoke("data", "profile", str(files / "ref.parquet"), "--json")
    assert json.loads(as_json.stdout)["rows"] == 3000


def test_infer_schema_then_validate_gates_ci(invoke, files):
    schema = files / "schema.yaml"
    result = invoke("data", "infer-schema", str(files / "ref.parquet"), "-o", str(schema))
    assert result.exit_code == 0, result.output
    assert "keys: customer_id" in result.output
    ok = invoke("data", "validate", str(files / "same.csv"), "--schema", str(schema))
    assert ok.exit_code == 0, ok.output
    assert "Validation passed" in ok.output
    bad = invoke(
        "data", "validate", str(files / "bad.parquet"), "-s", str(schema),
        "--html", str(files / "v.html"),
    )  # fmt: skip
    assert bad.exit_code == 1
    assert "new_value" in bad.output
    assert "null_values" in bad.output
    assert "<svg" in (files / "v.html").read_text() or "<table" in (files / "v.html").read_text()
    as_json = invoke("data", "validate", str(files / "bad.parquet"), "-s", str(schema), "--json")
    assert json.loads(as_json.stdout)["ok"] is False


def test_drift_and_fail_on_drift(invoke, files):
    same = invoke("data", "drift", str(files / "ref.parquet"), str(files / "same.csv"))
    assert same.exit_code == 0, same.output
    drifted = invoke(
        "data", "drift", str(files / "ref.parquet"), str(files / "drifted.parquet"),
        "--columns", "amount,country", "--fail-on-drift", "--html", str(files / "d.html"),
    )  # fmt: skip
    assert drifted.exit_code == 1
    assert "DRIFTED" in drifted.output
    assert "<svg" in (files / "d.html").read_text()


def test_quality(invoke, files):
    result = invoke("data", "quality", str(files / "ref.parquet"), "--target", "label", "--json")
    assert result.exit_code == 0, result.output
    assert "findings" in json.loads(result.stdout)


def test_datasets_list_and_show(invoke, files, store_url, tmp_path):
    import loopwise as lw

    lw.configure(store_url=store_url, artifacts_url=str(tmp_path / "artifacts"))
    lw.log_dataset(files / "ref.parquet", name="loans")
    context.reset()
    listing = invoke("datasets", "list", "--json")
    assert json.loads(listing.stdout)[0]["name"] == "loans"
    shown = invoke("datasets", "show", "datasets:/loans/1")
    assert shown.exit_code == 0, shown.output
    assert "3,000 rows × 4 columns" in shown.output
    by_ref = invoke("data", "profile", "datasets:/loans@latest", "--json")
    assert json.loads(by_ref.stdout)["rows"] == 3000


def test_errors_are_clear(invoke, files):
    missing = invoke("data", "profile", str(files / "nope.parquet"))
    assert missing.exit_code == 1
    assert "no such file" in missing.output
    (files / "notes.txt.gz").write_bytes(b"not data")
    wrong = invoke("data", "profile", str(files / "notes.txt.gz"))
    assert wrong.exit_code == 1
    assert "neither Parquet" in wrong.output
    unknown = invoke("datasets", "show", "nope")
    assert unknown.exit_code == 1
    assert "No dataset named 'nope'" in unknown.output
