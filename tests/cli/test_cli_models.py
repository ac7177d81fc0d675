"""``loopwise models`` and ``loopwise evaluate`` through CliRunner, on SQLite and PostgreSQL.

Why through a real store: the commands are thin, so what can break is the wiring (names
reaching the registry, alias moves printed as made, errors turning into exit code 1 with a
message, JSON that parses) and the display of real versions, lineage and evaluations.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from sklearn.linear_model import LinearRegression, LogisticRegression
from typer.testing import Result

from loopwise import context
from loopwise.cli.models import model_uri, parse_bins, parse_time
from tests import helpers

Invoke = Callable[..., Result]
stepped = helpers.stepped  # the fixture: a clock the tests step
FEATURES = ["age", "income"]


def _dispose() -> None:
    old = context.reset()
    if old is not None:
        old.db.engine.dispose()


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50_000, 15_000, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    score = (frame["age"] - 45) / 20 + (frame["income"] - 50_000) / 20_000
    frame["y"] = (score + rng.normal(0, 0.3, n) > 0).astype(int)
    return frame


def _configure(store_url: str, tmp_path: Path):
    import loopwise as lw

    lw.configure(
        store_url=store_url,
        artifacts_url=str(tmp_path / "artifacts"),
        cache_dir=str(tmp_path / "cache"),
    )
    return lw


@pytest.fixture
def registry(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """credit-risk v1 (logged in a run, trained on datasets:/loans/1) and v2; a holdout.

    The holdout has the labels of region "east" flipped, so that slice is flagged.
    """
    monkeypatch.chdir(tmp_path)
    lw = _configure(store_url, tmp_path)
    train = _frame(600, 0)
    X, y = train[FEATURES], train["y"]
    with lw.start_run(experiment="credit", name="lr-c1"):
        lw.log_params({"C": 1.0})
        lw.log_dataset(train, name="loans")
        lw.log_metric("train_auc", 0.9)
        lw.log_model(
            LogisticRegression(C=1.0, max_iter=1000).fit(X, y),
            name="credit-risk",
            input_example=X[:5],
            description="first try",
            tags={"team": "risk"},
        )
    lw.log_model(
        LogisticRegression(C=0.1, max_iter=1000).fit(X, y),
        name="credit-risk",
        input_example=X[:5],
    )
    holdout = _frame(900, 1)
    east = holdout["region"] == "east"
    holdout.loc[east, "y"] = 1 - holdout.loc[east, "y"]
    holdout.to_parquet(tmp_path / "holdout.parquet")
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    lw.log_dataset(holdout, name="holdout")
    _dispose()
    return tmp_path


def _json(result: Result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- pure helpers ----------------------------------------------------------------------------


def test_helpers():
    assert model_uri("credit-risk") == "models:/credit-risk"
    assert model_uri("credit-risk@champion") == "models:/credit-risk@champion"
    assert model_uri("models:/credit-risk/2") == "models:/credit-risk/2"
    assert parse_bins(["age=0,30, 50,120"]) == [("age", [0.0, 30.0, 50.0, 120.0])]
    assert parse_time("2024-05-01T12:00:00Z") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_time("2024-05-01T14:00:00+02:00") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    with pytest.raises(typer.BadParameter, match="has no time zone; write it with one"):
        parse_time("2024-05-01T12:00:00")


# -- listing and show ------------------------------------------------------------------------


def test_list_on_an_empty_store(invoke, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("models", "list")
    assert result.exit_code == 0, result.output
    assert "No models yet" in result.output
    assert _json(invoke("models", "list", "--json")) == []


def test_list_and_versions(invoke, registry):
    assert invoke("models", "alias", "set", "credit-risk", "challenger", "2").exit_code == 0
    assert invoke("models", "alias", "set", "credit-risk", "champion", "1").exit_code == 0
    listed = invoke("models", "list")
    assert listed.exit_code == 0, listed.output
    assert "credit-risk" in listed.output
    assert "champion→1, challenger→2" in listed.output
    [model] = _json(invoke("models", "list", "--json"))
    assert model["name"] == "credit-risk"
    assert model["versions"] == 2
    assert model["latest_version"] == 2
    assert model["aliases"] == {"champion": 1, "challenger": 2}

    versions = invoke("models", "versions", "credit-risk")
    assert versions.exit_code == 0, versions.output
    assert "sklearn" in versions.output
    assert "challenger" in versions.output
    found = _json(invoke("models", "versions", "credit-risk", "--json"))
    assert [v["version"] for v in found] == [1, 2]
    assert found[0]["aliases"] == ["champion"]
    assert found[0]["run_id"] is not None
    assert found[1]["run_id"] is None


def test_show_version_with_lineage(invoke, registry):
    shown = invoke("models", "show", "models:/credit-risk/1")
    assert shown.exit_code == 0, shown.output
    for expected in (
        "models:/credit-risk/1",
        "first try",
        "team=risk",
        "Signature",
        "income",
        "float",
        "lr-c1",
        "credit",
        "datasets:/loans/1 (600 rows × 4 columns)",
        "train_auc",
        "No evaluations stored",
    ):
        assert expected in shown.output, expected
    doc = _json(invoke("models", "show", "credit-risk/1", "--json"))
    assert doc["model_version"]["version"] == 1
    assert doc["model_version"]["tags"] == {"team": "risk"}
    assert [c["name"] for c in doc["model_version"]["signature"]["inputs"]] == FEATURES
    assert doc["run"]["name"] == "lr-c1"
    assert doc["run"]["params"] == {"C": "1.0"}
    assert doc["run"]["metrics"] == {"train_auc": 0.9}
    assert [d["uri"] for d in doc["datasets"]] == ["datasets:/loans/1"]
    assert doc["evaluations"] == []


def test_show_a_name_means_latest(invoke, registry):
    shown = invoke("models", "show", "credit-risk")
    assert shown.exit_code == 0, shown.output
    assert "models:/credit-risk/2" in shown.output
    assert "no run recorded" in shown.output
    assert _json(invoke("models", "show", "credit-risk", "--json"))["run"] is None


# -- aliases ---------------------------------------------------------------------------------


def test_alias_moves_history_rollback_and_at(invoke, registry, stepped):
    first = invoke("models", "alias", "set", "credit-risk", "champion", "1", "--reason", "first")
    assert first.exit_code == 0, first.output
    assert "credit-risk@champion: – → 1" in first.output
    stepped.advance(1)
    middle = stepped.now()
    stepped.advance(1)
    second = invoke("models", "alias", "set", "credit-risk", "champion", "2", "-r", "better auc")
    assert second.exit_code == 0, second.output
    assert "champion: 1 → 2" in second.output

    back = invoke("models", "rollback", "credit-risk", "--alias", "champion", "--reason", "oops")
    assert back.exit_code == 0, back.output
    assert "champion: 2 → 1 (rollback)" in back.output
    again = invoke("models", "rollback", "credit-risk", "--alias", "champion")
    assert again.exit_code == 1
    assert "Error:" in again.output
    assert "no earlier holder" in again.output

    history = invoke("models", "history", "credit-risk")
    assert history.exit_code == 0, history.output
    assert "better auc" in history.output
    assert "2 → 1" in history.output
    moves = _json(invoke("models", "history", "credit-risk", "--alias", "champion", "--json"))
    assert [(m["kind"], m["from_version"], m["to_version"]) for m in moves] == [
        ("set", None, 1),
        ("set", 1, 2),
        ("rollback", 2, 1),
    ]
    assert moves[2]["reason"] == "oops"
    assert _json(invoke("models", "history", "credit-risk", "-a", "other", "--json")) == []

    at = invoke("models", "at", "credit-risk", "--alias", "champion", "--time", middle.isoformat())
    assert at.exit_code == 0, at.output
    assert "version 1 (models:/credit-risk/1)" in at.output
    for moment in (middle.astimezone(timezone(timedelta(hours=2))), stepped.now()):
        held = invoke("models", "at", "credit-risk", "-a", "champion", "-t", moment.isoformat())
        assert "version 1" in held.output, moment
    naive = invoke("models", "at", "credit-risk", "-a", "champion", "-t", "2000-01-01T00:00")
    assert naive.exit_code == 2  # a time without a zone is refused, never guessed
    assert "has no time zone" in naive.output
    assert "2000-01-01T00:00Z" in naive.output
    before = invoke("models", "at", "credit-risk", "-a", "champion", "-t", "2000-01-01T00:00Z")
    assert before.exit_code == 1
    assert "No version of model 'credit-risk' held alias 'champion'" in before.output
    bad = invoke("models", "at", "credit-risk", "-a", "champion", "-t", "yesterday")
    assert bad.exit_code == 2
    assert "ISO 8601" in bad.output

    deleted = invoke("models", "alias", "delete", "credit-risk", "champion", "--reason", "retired")
    assert deleted.exit_code == 0, deleted.output
    assert "champion: 1 → – (deleted)" in deleted.output
    assert _json(invoke("models", "list", "--json"))[0]["aliases"] == {}


def test_errors_exit_1_with_a_message(invoke, registry):
    for args in (
        ("models", "show", "nope"),
        ("models", "versions", "nope"),
        ("models", "history", "nope"),
        ("models", "alias", "set", "nope", "champion", "1"),
        ("models", "rollback", "nope", "--alias", "champion"),
        ("models", "at", "nope", "-a", "champion", "-t", "2024-01-01T00:00Z"),
        ("evaluate", "nope", str(registry / "holdout.parquet")),
    ):
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert "Error: No model named 'nope'" in result.output, args
        assert "Traceback" not in result.output
    cases = {
        ("models", "alias", "set", "credit-risk", "Champion", "1"): "is not valid",
        ("models", "alias", "set", "credit-risk", "latest", "1"): "reserved",
        ("models", "alias", "set", "credit-risk", "champion", "9"): "no version 9",
        ("models", "alias", "delete", "credit-risk", "champion"): "no alias 'champion'",
        ("models", "rollback", "credit-risk", "-a", "champion"): "no earlier holder",
        ("models", "show", "models:/credit-risk/7"): "no version 7",
        ("models", "show", "credit-risk@champion"): "has no alias 'champion'",
        ("models", "show", "datasets:/loans/1"): "Expected a models:/ reference",
    }
    for args, message in cases.items():
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
    # A first set then a rollback: the alias had no earlier holder.
    assert invoke("models", "alias", "set", "credit-risk", "champion", "2").exit_code == 0
    alone = invoke("models", "rollback", "credit-risk", "--alias", "champion")
    assert alone.exit_code == 1
    assert "no earlier holder" in alone.output
    assert invoke("models", "alias", "set", "credit-risk", "champion", "two").exit_code == 2


# -- evaluate --------------------------------------------------------------------------------


def test_evaluate_file_with_slices_bins_and_html(invoke, registry):
    report = registry / "report.html"
    result = invoke(
        "evaluate", "models:/credit-risk/1", str(registry / "holdout.parquet"),
        "--target", "y", "--slice", "region", "--bins", "age=18,40,60,80", "--html", str(report),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    assert "binary classification of 'y' on 900 rows" in out
    for expected in ("metric", "baseline", "lift", "roc_auc", "Slices", "north", "[18, 40)"):
        assert expected in out, expected
    east = next(line for line in out.splitlines() if " east " in line)
    assert "▼" in east
    assert "accuracy" in east
    north = next(line for line in out.splitlines() if " north " in line)
    assert "▼" not in north
    assert "marked ▼" in out
    assert "HTML report written" in out
    assert "<html" in report.read_text().lower()

    as_json = invoke(
        "evaluate", "credit-risk@latest", str(registry / "holdout.csv"),
        "-t", "y", "-s", "region", "--task", "classification", "--json",
    )  # fmt: skip
    doc = _json(as_json)
    assert doc["task"] == "classification"
    assert doc["n"] == 900
    assert {r["slice_value"] for r in doc["slice_metrics"]} == {"north", "south", "east"}
    assert {r["slice_value"] for r in doc["flagged_slices"]} == {"east"}
    assert doc["lift"]["accuracy"] == pytest.approx(
        doc["metrics"]["accuracy"] - doc["baseline_metrics"]["accuracy"]
    )

    # Both evaluations are stored with their versions and listed by `models show`.
    shown = invoke("models", "show", "credit-risk/1")
    assert shown.exit_code == 0, shown.output
    assert "Evaluations (overall)" in shown.output
    assert "unversioned data (900 rows)" in shown.output
    assert len(_json(invoke("models", "show", "credit-risk/2", "--json"))["evaluations"]) == 1


def test_evaluate_a_dataset_reference(invoke, registry):
    doc = _json(invoke("evaluate", "credit-risk/1", "datasets:/holdout@latest", "--json"))
    assert doc["n"] == 900
    assert doc["slice_metrics"] == []
    plain = invoke("evaluate", "credit-risk/1", "datasets:/holdout/1")
    assert plain.exit_code == 0, plain.output
    assert "Slices" not in plain.output
    shown = invoke("models", "show", "credit-risk/1")
    assert shown.exit_code == 0, shown.output
    # Not a training set: looked up. The same result stored twice is listed once, counted.
    row = next(line for line in shown.output.splitlines() if "datasets:/holdout/1" in line)
    assert "2×, last" in row
    assert shown.output.count("datasets:/holdout/1") == 1
    evaluations = _json(invoke("models", "show", "credit-risk/1", "--json"))["evaluations"]
    assert all(e["dataset_version_id"] is not None for e in evaluations)


def test_show_lists_an_evaluation_stored_again_once(invoke, registry):
    data = str(registry / "holdout.parquet")
    for source in (data, data, "datasets:/holdout/1"):
        assert invoke("evaluate", "credit-risk/1", source, "--json").exit_code == 0
    shown = invoke("models", "show", "credit-risk/1")
    assert shown.exit_code == 0, shown.output
    table = shown.stdout.split("Evaluations (overall)", 1)[1]
    rows = [line for line in table.splitlines() if line.strip()[:2] in ("1 ", "2 ", "3 ")]
    assert len(rows) == 2, table  # the file's result once, the dataset version's once
    assert "unversioned data (900 rows)" in rows[0]
    assert "2×, last" in rows[0]
    assert "datasets:/holdout/1" in rows[1]
    assert "×" not in rows[1]
    assert "a frame or file" not in shown.stdout
    assert "log it with lw.log_dataset" in shown.stderr
    evaluations = _json(invoke("models", "show", "credit-risk/1", "--json"))["evaluations"]
    assert [(e["count"], e["data"]) for e in evaluations] == [
        (2, "unversioned data (900 rows)"),
        (1, "datasets:/holdout/1"),
    ]
    assert len(set(evaluations[0]["ids"])) == 2
    assert evaluations[1]["dataset_version_id"] is not None


def test_refused_promotions_say_why_in_show_and_history(invoke, registry):
    (registry / "strict.yaml").write_text("thresholds: {roc_auc: 0.99, accuracy: 0.1}\n")
    (registry / "easy.yaml").write_text("thresholds: {accuracy: 0.1}\n")
    data = str(registry / "holdout.parquet")
    promote = ("models", "promote", "--alias", "champion", "--data", data, "--target", "y")
    assert invoke(*promote, "credit-risk/1", "--policy", str(registry / "easy.yaml")).exit_code == 0
    for _ in range(2):
        refused = invoke(*promote, "credit-risk/2", "--policy", str(registry / "strict.yaml"))
        assert refused.exit_code == 1, refused.output
    auc = _json(invoke("models", "show", "credit-risk/2", "--json"))["evaluations"][0]["metrics"][
        "roc_auc"
    ]

    shown = invoke("models", "show", "credit-risk/2")
    assert shown.exit_code == 0, shown.output
    promotions = shown.stdout.split("Promotions", 1)[1].split("Why refused", 1)[0]
    verdicts = [row.split() for row in promotions.splitlines() if row.strip()[:2] in ("1 ", "2 ")]
    assert [(row[3], row[4], row[5], row[6]) for row in verdicts] == [
        ("champion", "refused", "1", "1/2"),
        ("champion", "refused", "1", "1/2"),
    ]
    why = shown.stdout.split("Why refused", 1)[1]
    failed = [line.split() for line in why.splitlines() if "threshold:roc_auc" in line]
    assert len(failed) == 2  # one per refused attempt
    assert failed[0][:5] == ["1", "threshold:roc_auc", "–", f"{auc:.6g}", "0.99"]
    assert "below the floor 0.99" in why
    assert "2×, last" in shown.stdout  # both attempts stored the same evaluation
    doc = _json(invoke("models", "show", "credit-risk/2", "--json"))
    assert [p["passed"] for p in doc["promotions"]] == [False, False]
    assert [c["name"] for c in doc["promotions"][0]["failed_checks"]] == ["threshold:roc_auc"]

    history = invoke("models", "history", "credit-risk", "--alias", "champion")
    assert history.exit_code == 0, history.output
    rows = [line for line in history.stdout.splitlines() if "champion" in line]
    assert [line.split()[3:6] for line in rows] == [
        ["set", "–", "→"],
        ["refused", "1", "↛"],
        ["refused", "1", "↛"],
    ]
    assert "threshold:roc_auc — roc_auc is" in rows[1]
    assert "2 refused promotions" in history.stderr
    entries = _json(invoke("models", "history", "credit-risk", "--json"))
    assert [(e["kind"], e["from_version"], e["to_version"]) for e in entries] == [
        ("set", None, 1),
        ("refused", 1, 1),
        ("refused", 1, 1),
    ]
    assert entries[1]["candidate_version"] == 2
    assert entries[1]["failed_checks"][0]["limit"] == 0.99
    assert entries[1]["failed_checks"][0]["value"] == pytest.approx(auc)
    assert _json(invoke("models", "history", "credit-risk", "-a", "other", "--json")) == []


def test_evaluate_regression(invoke, registry, store_url):
    lw = _configure(store_url, registry)
    frame = _frame(400, 2)
    frame["price"] = frame["income"] / 100 + frame["age"] * 3
    lw.log_model(
        LinearRegression().fit(frame[FEATURES], frame["price"]),
        name="house-price",
        input_example=frame[FEATURES][:5],
    )
    _dispose()
    frame.to_parquet(registry / "prices.parquet")
    result = invoke(
        "evaluate", "house-price", str(registry / "prices.parquet"),
        "--target", "price", "--task", "regression", "--bins", "age=18,50,80",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "regression of 'price' on 400 rows" in result.output
    for expected in ("rmse", "mae", "r2", "[18, 50)"):
        assert expected in result.output
    assert "roc_auc" not in result.output
    doc = _json(invoke("evaluate", "house-price", str(registry / "prices.parquet"),
                       "-t", "price", "--json"))  # fmt: skip
    assert doc["task"] == "regression"
    assert doc["metrics"]["r2"] == pytest.approx(1.0)


def test_evaluate_errors(invoke, registry):
    data = str(registry / "holdout.parquet")
    bad_bins = invoke("evaluate", "credit-risk", data, "--bins", "age")
    assert bad_bins.exit_code == 2
    assert "COLUMN=EDGE" in bad_bins.output
    no_target = invoke("evaluate", "credit-risk", data, "--target", "label")
    assert no_target.exit_code == 1
    assert "target column 'label'" in no_target.output
    no_column = invoke("evaluate", "credit-risk", data, "--slice", "country")
    assert no_column.exit_code == 1
    assert "slice column 'country'" in no_column.output
    twice = invoke("evaluate", "credit-risk", data, "-s", "age", "--bins", "age=18,40,80")
    assert twice.exit_code == 1
    assert "more than once" in twice.output
    missing = invoke("evaluate", "credit-risk", str(registry / "missing.parquet"))
    assert missing.exit_code == 1
    assert "Error:" in missing.output
    bad_task = invoke("evaluate", "credit-risk", data, "--task", "ranking")
    assert bad_task.exit_code == 2
