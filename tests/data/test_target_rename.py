"""``label`` -> ``target``: the label column has one name everywhere; the old name still
works for a while, warns naming the new one, and is refused alongside it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import loopwise as lw
from loopwise.data.drift.detect import detect_drift, detect_skew
from loopwise.data.schema import Schema, target_of
from loopwise.data.schema_inference import infer_schema
from loopwise.data.validation import validate
from loopwise.errors import InvalidInput
from tests.helpers import make_customers


@pytest.fixture(scope="module")
def customers() -> pl.DataFrame:
    return make_customers(500, 0)


def frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(3)
    reference = pl.DataFrame({"x": rng.normal(0, 1, 500), "y": np.arange(500) % 2})
    current = pl.DataFrame({"x": rng.normal(0, 1, 500), "y": (np.arange(500) % 5 == 0) * 1})
    return reference, current


def test_infer_schema_label_still_works_and_warns(customers: pl.DataFrame) -> None:
    with pytest.warns(
        DeprecationWarning, match=r"infer_schema\(label=...\).*infer_schema\(target="
    ):
        old = infer_schema(customers, label="churned")
    assert old == infer_schema(customers, target="churned")
    assert old.target == "churned"
    with pytest.warns(DeprecationWarning, match="use infer_schema"):
        assert lw.infer_schema(customers, label="churned").target == "churned"


def test_infer_schema_refuses_both_names(customers: pl.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="'target' or its deprecated name 'label', not both"):
        infer_schema(customers, target="churned", label="churned")


def test_detect_drift_and_skew_label_still_work_and_warn() -> None:
    reference, current = frames()
    with pytest.warns(DeprecationWarning, match=r"detect_drift\(label=...\).*\(target=...\)"):
        report = detect_drift(reference, current, label="y")
    assert list(report.columns) == ["x"]
    assert report.target == "y"
    with pytest.warns(DeprecationWarning, match=r"detect_skew\(label=...\).*\(target=...\)"):
        assert detect_skew(reference, current, label="y").target == "y"
    with pytest.raises(InvalidInput, match=r"detect_drift takes 'target' or .* 'label', not both"):
        detect_drift(reference, current, target="y", label="y")
    with pytest.raises(InvalidInput, match=r"detect_skew takes 'target' or .* 'label', not both"):
        detect_skew(reference, current, target="y", label="y")


def test_drift_report_label_attribute_warns() -> None:
    report = detect_drift(*frames(), target="y")
    with pytest.warns(DeprecationWarning, match=r"DriftReport.label is deprecated; use Dr"):
        assert report.label == "y"


def test_validate_expect_label_still_works_and_warns(customers: pl.DataFrame) -> None:
    schema = infer_schema(customers, target="churned")
    serving = customers.drop("churned")
    assert not validate(serving, schema).ok  # the target is expected by default
    with pytest.warns(DeprecationWarning, match=r"validate\(expect_label=...\).*expect_target"):
        assert validate(serving, schema, expect_label=False).ok
    with pytest.raises(InvalidInput, match="'expect_target' or its deprecated name"):
        validate(serving, schema, expect_target=False, expect_label=False)


def test_schema_label_argument_and_attribute_warn(customers: pl.DataFrame) -> None:
    inferred = infer_schema(customers, target="churned")
    with pytest.warns(DeprecationWarning, match=r"Schema\(label=...\) is deprecated"):
        built = Schema(columns=inferred.columns, label="churned")
    assert built.target == "churned"
    with pytest.raises(InvalidInput, match="Schema takes 'target' or its deprecated name"):
        Schema(columns=inferred.columns, target="churned", label="churned")
    with pytest.warns(DeprecationWarning, match=r"Schema.label is deprecated; use Schema.target"):
        assert inferred.label == "churned"
    with pytest.warns(DeprecationWarning, match=r"Schema.label is deprecated"):
        inferred.label = "age"
    assert inferred.target == "age"


OLD_FILE = """\
format_version: 2
loopwise_version: 0.1.0
rows: 3
label: y
ordered: false
allow_empty: false
keys: []
severity: {}
thresholds: {}
columns:
- {name: x, type: float, required: true, nullable: false, max_missing_rate: 0.0}
- {name: y, type: integer, required: true, nullable: false, max_missing_rate: 0.0, domain: [0, 1]}
checks: []
"""


def test_a_schema_file_written_with_label_still_loads_and_saves_target(tmp_path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(OLD_FILE)
    old = Schema.load(path)  # a file is no call: nothing to warn about
    assert old.target == "y"
    saved = old.save(tmp_path / "new.yaml").read_text()
    assert "\ntarget: y\n" in saved
    assert "label:" not in saved
    assert "format_version: 3" in saved
    assert Schema.load(tmp_path / "new.yaml") == old


def test_a_schema_file_with_both_keys_is_refused(tmp_path) -> None:
    path = tmp_path / "both.yaml"
    path.write_text(OLD_FILE.replace("label: y\n", "label: y\ntarget: y\n"))
    with pytest.raises(InvalidInput, match="'target' and its former name 'label'"):
        Schema.load(path)


def test_stored_schema_documents_name_the_target_either_way(customers: pl.DataFrame) -> None:
    document = infer_schema(customers, target="churned").to_dict()
    assert document["target"] == "churned"
    assert "label" not in document
    assert target_of(document) == "churned"
    assert target_of({"format_version": 2, "label": "churned"}) == "churned"
    assert target_of(None) is None


def test_every_warning_points_at_the_callers_line(customers: pl.DataFrame) -> None:
    """So a user sees their own line, and loopwise code using an old name fails the tests."""
    reference, current = frames()
    schema = infer_schema(customers, target="churned")
    calls = [
        lambda: infer_schema(customers, label="churned"),
        lambda: detect_drift(reference, current, label="y"),
        lambda: detect_skew(reference, current, label="y"),
        lambda: detect_drift(reference, current, target="y").label,
        lambda: validate(customers, schema, expect_label=True),
        lambda: Schema(columns=schema.columns, label="churned"),
        lambda: schema.label,
    ]
    for call in calls:
        with pytest.warns(DeprecationWarning, match="deprecated") as caught:
            call()
        assert [w.filename for w in caught] == [__file__]
