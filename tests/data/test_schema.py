"""Schema inference, curation (YAML), and the restricted custom-check expressions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from loopwise.data.profiles import ColumnProfile, Profile
from loopwise.data.profiling import profile
from loopwise.data.schema import Check, ColumnSchema, CustomCheck, Schema, compile_expression
from loopwise.data.schema_inference import infer_schema
from loopwise.errors import InvalidInput, NotFound
from tests.helpers import make_customers


@pytest.fixture(scope="module")
def customers() -> pl.DataFrame:
    return make_customers(2000, 0)


@pytest.fixture(scope="module")
def schema(customers: pl.DataFrame) -> Schema:
    return infer_schema(customers, target="churned")


# -- inference ------------------------------------------------------------------------------


def test_types_nullability_and_order(schema: Schema, customers: pl.DataFrame) -> None:
    assert list(schema.columns) == customers.columns
    types = {n: c.type for n, c in schema.columns.items()}
    assert types["age"] == "integer"
    assert types["income"] == "float"
    assert types["country"] == "string"
    assert types["active"] == "boolean"
    assert types["signup"] == "date"
    assert schema["tenure"].nullable
    assert 0.05 < schema["tenure"].max_missing_rate < 0.15
    assert not schema["age"].nullable
    assert schema["age"].max_missing_rate == 0
    assert all(c.required for c in schema.columns.values())
    assert schema.target == "churned"
    assert schema.rows == 2000
    assert not schema.ordered


def test_identifier_columns_are_keys_without_range_or_domain(schema: Schema) -> None:
    assert ["customer_id"] in schema.keys
    assert ["account_no"] in schema.keys
    for name in ("customer_id", "account_no"):
        column = schema[name]
        assert column.min is None
        assert column.max is None
        assert column.domain is None


def test_free_text_is_neither_key_nor_domain(schema: Schema) -> None:
    assert ["note"] not in schema.keys
    assert schema["note"].domain is None


def test_domains_for_repeating_text_booleans_and_label(schema: Schema) -> None:
    assert schema["country"].domain == ["DE", "ES", "FR", "GB", "US"]
    assert schema["plan"].domain == ["basic", "pro", "team"]
    assert schema["active"].domain == [False, True]
    assert schema["churned"].domain == ["no", "yes"]


def test_numeric_ranges_follow_the_support(schema: Schema, customers: pl.DataFrame) -> None:
    for name in ("income", "score", "tenure", "visits"):  # thin tails: room past them
        column, values = schema[name], customers[name].drop_nulls()
        span = values.max() - values.min()
        assert column.min <= max(values.min() - 0.1 * span, 0)
        assert column.max >= values.max() + 0.1 * span
        if name != "income":  # (lognormal: its tail goes far, in log space)
            assert column.max <= values.max() + 3 * span  # ...but not far past them
    assert schema["income"].max <= 10 * customers["income"].max()
    assert schema["income"].min == 0  # non-negative data: never below zero
    assert schema["tenure"].min == 0
    assert schema["visits"].min == 0
    assert schema["score"].min < 0 < schema["score"].max
    # uniform integers 18-89, each value seen many times: the range is what was seen
    assert (schema["age"].min, schema["age"].max) == (18, 89)
    assert isinstance(schema["age"].min, int)
    assert isinstance(schema["age"].max, int)
    assert schema["signup"].min is None  # no date ranges: time moves on


def test_range_slack_widens(customers: pl.DataFrame) -> None:
    narrow = infer_schema(customers, range_slack=0.0)["score"]
    wide = infer_schema(customers, range_slack=5.0)["score"]
    assert wide.max - wide.min > narrow.max - narrow.min


def test_max_categories_limits_domains(customers: pl.DataFrame) -> None:
    s = infer_schema(customers, max_categories=3)
    assert s["country"].domain is None
    assert s["plan"].domain == ["basic", "pro", "team"]


def test_ordered_and_thresholds(customers: pl.DataFrame) -> None:
    s = infer_schema(customers, ordered=True)
    assert s.ordered
    assert s.thresholds.min_class_share == 0.01
    assert s.thresholds.max_duplicate_share == 0.0


def test_rare_label_class_lowers_the_class_floor() -> None:
    rng = np.random.default_rng(3)
    frame = pl.DataFrame({"x": rng.normal(size=5000), "y": rng.random(5000) < 0.004})
    s = infer_schema(frame, target="y")
    share = frame["y"].mean()
    assert s.thresholds.min_class_share <= share / 2 + 1e-6


def test_placeholders_seen_in_source_are_recorded() -> None:
    frame = pl.DataFrame({"v": [-1] * 50 + list(range(950)), "t": ["N/A"] * 100 + ["a", "b"] * 450})
    s = infer_schema(frame)
    assert s["v"].defaults_seen == {"0": 0.001, "-1": 0.05}  # range(950) holds one 0
    assert s["t"].defaults_seen == {"n/a": 0.1}


def test_natural_duplicates_switch_the_duplicate_check_off() -> None:
    frame = pl.DataFrame({"a": ["x", "y"] * 500, "b": [1, 2] * 500})
    assert infer_schema(frame).thresholds.max_duplicate_share == 1.0


def test_from_a_profile_directly(customers: pl.DataFrame) -> None:
    from_profile = infer_schema(profile(customers), target="churned")
    from_data = infer_schema(customers, target="churned")
    assert from_profile["age"] == from_data["age"]
    assert from_profile["country"].domain == from_data["country"].domain
    # A profile cannot tell unique free text from ids (no whitespace test): review keys.
    assert [k for k in from_profile.keys if k != ["note"]] == from_data.keys


def test_from_a_hand_built_profile() -> None:
    p = Profile(
        rows=100,
        columns={
            "id": ColumnProfile(
                name="id",
                dtype="Int64",
                kind="integer",
                count=100,
                nulls=0,
                distinct=100,
                min=1,
                max=100,
            ),
            "x": ColumnProfile(
                name="x",
                dtype="Float64",
                kind="float",
                count=90,
                nulls=10,
                distinct=90,
                min=0.0,
                max=10.0,
            ),
            "c": ColumnProfile(
                name="c",
                dtype="String",
                kind="string",
                count=100,
                nulls=0,
                distinct=2,
                top_values=[("a", 60), ("b", 40)],
            ),
        },
    )
    s = infer_schema(p)
    assert s.keys == [["id"]]
    assert s["x"].nullable
    assert s["x"].max_missing_rate == pytest.approx(0.1)
    assert s["x"].min == 0
    assert s["x"].max == pytest.approx(11.0)
    assert s["c"].domain == ["a", "b"]
    assert s["c"].mode_share == pytest.approx(0.6)


def test_pandas_input_with_mixed_object_column() -> None:
    frame = pd.DataFrame({"mixed": [1, "two", 3.0, None] * 10, "n": range(40)})
    s = infer_schema(frame)
    assert s["mixed"].type == "string"


def test_empty_frame_and_all_null_column() -> None:
    empty = pl.DataFrame(schema={"a": pl.Int64, "b": pl.String})
    s = infer_schema(empty)
    assert [c.type for c in s.columns.values()] == ["integer", "string"]
    assert all(c.nullable for c in s.columns.values())
    nulls = pl.DataFrame({"a": [None, None, None], "b": [1, 2, 3]})
    t = infer_schema(nulls)
    assert t["a"].type == "any"
    assert t["a"].max_missing_rate == 1.0


def test_unicode_column_names() -> None:
    frame = pl.DataFrame({"größe": [1.0, 2.0, 3.0] * 10, "город": ["a", "b", "c"] * 10})
    s = infer_schema(frame)
    assert list(s.columns) == ["größe", "город"]
    assert Schema.from_dict(json.loads(json.dumps(s.to_dict()))) == s


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"target": "nope"}, "target 'nope' is not a column"),
        ({"target": 3}, "'target' parameter"),
        ({"range_slack": -1}, "'range_slack' parameter"),
        ({"max_categories": 1.5}, "'max_categories' parameter"),
        ({"ordered": "yes"}, "'ordered' parameter"),
    ],
)
def test_bad_arguments(customers: pl.DataFrame, kwargs: dict, text: str) -> None:
    with pytest.raises(InvalidInput, match=text):
        infer_schema(customers, **kwargs)


def test_bad_data_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="must be a pandas or Polars"):
        infer_schema([1, 2, 3])
    with pytest.raises(NotFound):
        infer_schema("/no/such/file.parquet")


# -- YAML and dict round trips -------------------------------------------------------------


def test_yaml_round_trip(schema: Schema, tmp_path) -> None:
    schema.add_check("adult", "col('age') >= 18", description="Customers are adults.")
    try:
        path = schema.save(tmp_path / "schema.yaml")
        loaded = Schema.load(path)
        assert loaded == schema
        text = path.read_text()
        assert "format_version: 3" in text
        assert "loopwise_version:" in text
    finally:
        schema.checks.clear()


def test_dict_round_trip_is_json_safe(schema: Schema) -> None:
    data = json.loads(json.dumps(schema.to_dict(), allow_nan=False))
    assert data["format_version"] == 3
    assert data["loopwise_version"]
    assert Schema.from_dict(data) == schema


def test_python_checks_are_not_saved(schema: Schema, tmp_path) -> None:
    copy = Schema.from_dict(schema.to_dict())
    copy.add_check("positive", lambda df: df["income"] > 0)
    path = copy.save(tmp_path / "s.yaml")
    assert "Not saved: Python-function checks ['positive']" in path.read_text()
    assert Schema.load(path).checks == []
    assert copy.to_dict()["checks"] == []


def test_typo_in_hand_edited_yaml_names_the_key(schema: Schema, tmp_path) -> None:
    path = schema.save(tmp_path / "schema.yaml")
    path.write_text(path.read_text().replace("nullable:", "nulable:", 1))
    with pytest.raises(InvalidInput, match=r"unknown key 'nulable'.*Did you mean 'nullable'"):
        Schema.load(path)


@pytest.mark.parametrize(
    ("edit", "text"),
    [
        (lambda d: d.update(colums=d.pop("columns")), "unknown key 'colums'"),
        (lambda d: d["thresholds"].update(min_class=0.1), "unknown key 'min_class'"),
        (lambda d: d.update(format_version=99), "format_version 99 is not supported.*newer"),
        (lambda d: d.update(format_version="1"), "format_version '1' is not supported"),
        (lambda d: d.update(allow_empty="yes"), "allow_empty must be true or false"),
        (lambda d: d.update(severity={"duplicate_rows": "fatal"}), "must be one of"),
        (lambda d: d.update(severity={"duplicate_row": "error"}), "'duplicate_row' cannot"),
        (lambda d: d.update(severity={"empty_data": "warning"}), "Set allow_empty: true"),
        (lambda d: d.update(severity={"custom_check": "warning"}), "severity of each check"),
        (lambda d: d["thresholds"].update(distribution_alpha=2), "distribution_alpha must"),
        (lambda d: d["columns"][0].update(type="int"), "type 'int' is not one of"),
        (lambda d: d["columns"][2].update(max_missing_rate=2), r"must be a number in \[0, 1\]"),
        (lambda d: d.update(target="nope"), "target 'nope' is not a column"),
        (lambda d: d.update(keys=[["ghost"]]), "unknown columns \\['ghost'\\]"),
        (lambda d: d["columns"][7].update(min=1), "applies to numbers and dates only"),
        (lambda d: d.update(checks=[{"name": "x", "expr": "open('f')"}]), "not allowed"),
        (lambda d: d["columns"].append(dict(d["columns"][0])), "more than once"),
    ],
)
def test_bad_schema_documents(schema: Schema, edit, text: str) -> None:
    data = json.loads(json.dumps(schema.to_dict()))
    edit(data)
    with pytest.raises(InvalidInput, match=text):
        Schema.from_dict(data)


def test_load_errors(tmp_path) -> None:
    with pytest.raises(NotFound, match="does not exist; save one"):
        Schema.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: [unclosed\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        Schema.load(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(InvalidInput, match="must be a mapping"):
        Schema.load(bad)


def test_schema_is_editable_in_code(schema: Schema) -> None:
    copy = Schema.from_dict(schema.to_dict())
    copy["age"].max = 120
    copy.columns["nickname"] = ColumnSchema("nickname", "string", required=False)
    assert Schema.from_dict(copy.to_dict()) == copy
    with pytest.raises(InvalidInput, match="has no column 'nope'"):
        copy["nope"]


# -- custom check expressions -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "col('age') >= 18",
        "pl.col('age').is_between(18, 120)",
        "(col('a') > 0) & (col('b') < lit(5))",
        "col('country').is_in(['GB', 'US'])",
        "col('end') >= col('start')",
        "col('x').replace({'a': 'b'}) != 'c'",
        "col('x') ** 2 < 10",
        "col('x').is_null().mean() < 0.1",
    ],
)
def test_allowed_expressions(text: str) -> None:
    assert isinstance(compile_expression(text), pl.Expr)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("__import__('os').system('ls')", "name '__import__' is unknown"),
        ("col('a').__class__", "attribute '__class__'"),
        ("open('/etc/passwd')", "name 'open' is unknown"),
        ("col('a').meta.serialize('x')", "is not available in checks"),
        ("col('a').map_elements(print)", "attribute 'map_elements'"),
        ("col('a') > 0 and col('b') > 0", "use & and |"),
        ("0 < col('a') < 5", "chained comparisons"),
        ("9 ** 9 ** 9", "arithmetic on constants"),
        ("[col('a')] * 1000000000", "arithmetic on lists"),
        ("lambda: 1", "Lambda is not supported"),
        ("[x for x in col('a')]", "ListComp is not supported"),
        ("col('a') >=", "not valid Python syntax"),
        ("lit(1)", None),  # an expression, fine
        ("'text'", "not a column expression"),
        ("", "non-empty string"),
    ],
)
def test_refused_expressions(text: str, why: str | None) -> None:
    if why is None:
        compile_expression(text)
        return
    with pytest.raises(InvalidInput, match=why):
        compile_expression(text)


def test_check_needs_exactly_one_of_expr_and_func() -> None:
    with pytest.raises(InvalidInput, match="exactly one"):
        CustomCheck("c")
    with pytest.raises(InvalidInput, match="exactly one"):
        CustomCheck("c", expr="col('a') > 0", func=lambda df: True)
    with pytest.raises(InvalidInput, match="severity"):
        CustomCheck("c", expr="col('a') > 0", severity="fatal")


def test_check_is_the_former_name_of_custom_check(customers: pl.DataFrame) -> None:
    assert Check is CustomCheck
    schema = Schema(
        columns=infer_schema(customers).columns, checks=[Check("c", expr="col('age') > 0")]
    )
    assert isinstance(schema.checks[0], CustomCheck)


def test_duplicate_check_names_are_refused(customers: pl.DataFrame) -> None:
    s = infer_schema(customers)
    s.add_check("adult", "col('age') >= 18")
    with pytest.raises(InvalidInput, match="already has a check named 'adult'"):
        s.add_check("adult", "col('age') >= 21")
    with pytest.raises(InvalidInput, match="expression string or a function"):
        s.add_check("bad", 42)


# -- format 1 files, and what format 2 added ---------------------------------------------------

SCHEMA_V1 = """\
# loopwise schema: review and edit, then load with Schema.load(path).
format_version: 1
loopwise_version: 0.1.0
rows: 2000
label: churned
ordered: false
keys: []
thresholds:
  missing_rate_tolerance: 0.02
  new_value_share: 0.01
  min_class_share: 0.01
  default_share: 0.001
  max_duplicate_share: 0.0
columns:
- name: balance
  type: float
  required: true
  nullable: false
  max_missing_rate: 0.0
  min: 0.0
  max: 5971.0
- name: churned
  type: string
  required: true
  nullable: false
  max_missing_rate: 0.0
  domain: ['no', 'yes']
checks: []
"""


def test_format_1_files_still_load(tmp_path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(SCHEMA_V1)
    old = Schema.load(path)
    assert old["balance"].max == 5971.0
    assert old["balance"].distribution is None  # no distribution checks until re-inferred
    assert old.allow_empty is False
    assert old.severity == {}
    assert old.thresholds.duplicate_error_share == 0.05
    again = Schema.load(old.save(tmp_path / "new.yaml"))  # saved as format 3
    assert again == old
    assert "format_version: 3" in (tmp_path / "new.yaml").read_text()


def test_format_2_options_round_trip(customers: pl.DataFrame, tmp_path) -> None:
    s = infer_schema(customers)
    assert s["income"].distribution is not None
    s.allow_empty = True
    s.severity = {"duplicate_rows": "error", "unexpected_column": "error"}
    s.thresholds.default_error_share = 0.2
    s.thresholds.distribution_alpha = 1e-9
    path = s.save(tmp_path / "s.yaml")
    text = path.read_text()
    assert "allow_empty: true" in text
    assert "duplicate_rows: error" in text
    assert "# severity: per anomaly kind" in text
    loaded = Schema.load(path)
    assert loaded == s
    assert loaded.thresholds.distribution_alpha == 1e-9
