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


@pytest.fixture
def credit(tmp_path):
    """ISLR ``Default``-like data: the label (Yes/No), a student flag, balance and income;
    the current batch has balance in another unit (x 1.5), nothing else moved."""
    rng = np.random.default_rng(3)

    def frame(n: int) -> pd.DataFrame:
        balance = rng.gamma(2.0, 420.0, n)
        return pd.DataFrame(
            {
                "default": np.where(balance + rng.normal(0, 300, n) > 1800, "Yes", "No"),
                "student": rng.choice(["Yes", "No"], n, p=[0.3, 0.7]),
                "balance": balance,
                "income": rng.normal(33_000, 13_000, n),
            }
        )

    frame(6000).to_csv(tmp_path / "ref.csv", index=False)
    current = frame(4000)
    current["balance"] *= 1.5
    current.to_csv(tmp_path / "scaled.csv", index=False)
    return tmp_path


def test_one_drifted_column_fails_the_gate_and_the_headline_names_it(invoke, credit):
    ref, cur = str(credit / "ref.csv"), str(credit / "scaled.csv")
    result = invoke("data", "drift", ref, cur, "--fail-on-drift")
    assert result.exit_code == 1, result.output
    assert "Drift in 1 of 4 columns: balance." in result.output
    assert "No dataset drift" not in result.output

    shared = invoke("data", "drift", ref, cur, "--fail-on-drift", "--share", "0.5")
    assert shared.exit_code == 0, shared.output  # 1 of 4 is under half: the share rule passes
    assert "Drift in 1 of 4 columns (25%, under the 50% share" in shared.output
    as_json = json.loads(invoke("data", "drift", ref, cur, "--share", "0.5", "--json").stdout)
    assert (as_json["drifted"], as_json["dataset_threshold"]) == (False, 0.5)

    bad = invoke("data", "drift", ref, cur, "--share", "0")
    assert bad.exit_code == 2
    assert "--share" in bad.output
    assert "(0, 1]" in bad.output


def test_the_label_column_is_left_out_unless_named(invoke, credit, store_url, tmp_path):
    ref, cur = str(credit / "ref.csv"), str(credit / "scaled.csv")
    page_path = tmp_path / "d.html"
    result = invoke("data", "drift", ref, cur, "--target", "default", "--html", str(page_path))
    assert result.exit_code == 0, result.output
    assert "Drift in 1 of 3 columns: balance." in result.output
    assert "Label column default not checked" in result.output
    page = page_path.read_text()
    assert "Drift in 1 of 3 columns: balance." in page
    assert "The label column default is not checked." in page
    as_json = json.loads(invoke("data", "drift", ref, cur, "--target", "default", "--json").stdout)
    assert as_json["target"] == "default"
    assert [c["column"] for c in as_json["columns"]] == ["student", "balance", "income"]
    named = invoke(
        "data", "drift", ref, cur, "--target", "default", "--columns", "balance,default", "--json"
    )
    assert [c["column"] for c in json.loads(named.stdout)["columns"]] == ["balance", "default"]

    # A logged dataset's schema names its label: drift leaves it out without --target.
    import loopwise as lw

    lw.configure(store_url=store_url, artifacts_url=str(tmp_path / "artifacts"))
    train = pd.read_csv(ref)
    lw.log_dataset(train, name="credit", schema=lw.infer_schema(train, target="default"))
    context.reset()
    logged = invoke("data", "drift", "datasets:/credit/1", cur, "--fail-on-drift")
    assert logged.exit_code == 1, logged.output
    assert "Drift in 1 of 3 columns: balance." in logged.output


def test_label_is_the_hidden_former_name_of_target(invoke, credit, tmp_path):
    ref, cur = str(credit / "ref.csv"), str(credit / "scaled.csv")
    old = invoke("data", "drift", ref, cur, "--label", "default", "--json")
    assert old.exit_code == 0, old.output
    assert json.loads(old.stdout)["target"] == "default"
    assert "--label is deprecated; use --target." in old.stderr
    schema = tmp_path / "schema.yaml"
    inferred = invoke("data", "infer-schema", ref, "-o", str(schema), "--label", "default")
    assert inferred.exit_code == 0, inferred.output
    assert "--label is deprecated; use --target." in inferred.stderr
    assert "\ntarget: default\n" in schema.read_text()
    both = invoke("data", "drift", ref, cur, "--target", "default", "--label", "default")
    assert both.exit_code == 1
    assert "Give --target or its deprecated name --label, not both" in both.stderr
    for command in ("drift", "infer-schema"):
        shown = invoke("data", command, "--help").stdout
        assert "--target" in shown
        assert "--label" not in shown


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
