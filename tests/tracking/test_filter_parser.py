"""Tests for the search_runs filter / order_by parser."""

from __future__ import annotations

import math

import pytest

from loopwise.errors import InvalidFilter, InvalidInput
from loopwise.tracking.filter_parser import (
    And,
    Comparison,
    Not,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)


def cmp(entity: str, key: str, op: str, value: object = None) -> Comparison:
    return Comparison(entity, key, op, value)


A = cmp("metrics", "a", "=", 1)
B = cmp("metrics", "b", "=", 2)
C = cmp("metrics", "c", "=", 3)


# --- empty input ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t "])
def test_empty_filter_is_none(text):
    assert parse_filter(text) is None


def test_non_string_filter_is_rejected():
    with pytest.raises(InvalidFilter, match="must be a string"):
        parse_filter(42)  # type: ignore[arg-type]


# --- and / or / not precedence -------------------------------------------------------------


def test_single_comparison():
    assert parse_filter("metrics.a = 1") == A


def test_and_binds_tighter_than_or():
    assert parse_filter("metrics.a = 1 or metrics.b = 2 and metrics.c = 3") == Or((A, And((B, C))))
    assert parse_filter("metrics.a = 1 and metrics.b = 2 or metrics.c = 3") == Or((And((A, B)), C))


def test_chains_are_flat():
    assert parse_filter("metrics.a = 1 and metrics.b = 2 and metrics.c = 3") == And((A, B, C))
    assert parse_filter("metrics.a = 1 or metrics.b = 2 or metrics.c = 3") == Or((A, B, C))


def test_not_binds_tighter_than_and():
    assert parse_filter("not metrics.a = 1 and metrics.b = 2") == And((Not(A), B))


def test_double_not():
    assert parse_filter("not not metrics.a = 1") == Not(Not(A))


def test_parentheses_override_precedence():
    assert parse_filter("(metrics.a = 1 or metrics.b = 2) and metrics.c = 3") == And(
        (Or((A, B)), C)
    )
    assert parse_filter("not (metrics.a = 1 or metrics.b = 2)") == Not(Or((A, B)))


def test_nested_and_redundant_parentheses():
    assert parse_filter("((metrics.a = 1))") == A
    text = "metrics.a = 1 and (metrics.b = 2 or (metrics.c = 3 and not metrics.a = 1))"
    assert parse_filter(text) == And((A, Or((B, And((C, Not(A)))))))


def test_keywords_are_case_insensitive():
    text = "NOT metrics.a = 1 AND metrics.b = 2 Or metrics.c = 3"
    assert parse_filter(text) == Or((And((Not(A), B)), C))
    assert parse_filter("tags.x IS NOT NULL") == cmp("tags", "x", "is not null")
    assert parse_filter("tags.x NOT IN ('a')") == cmp("tags", "x", "not in", ("a",))
    assert parse_filter("tags.x NOT ILIKE 'a%'") == cmp("tags", "x", "not ilike", "a%")


def test_whitespace_is_optional_around_operators_and_parentheses():
    assert parse_filter("(metrics.a=1)and(metrics.b==2)") == And((A, B))
    assert parse_filter("metrics.auc>=0.8") == cmp("metrics", "auc", ">=", 0.8)
    assert parse_filter("tags.x in('a','b')") == cmp("tags", "x", "in", ("a", "b"))


def test_newlines_and_tabs_are_whitespace():
    assert parse_filter("metrics.a = 1\n\tand\nmetrics.b = 2") == And((A, B))


# --- operators -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("=", "="),
        ("==", "="),
        ("!=", "!="),
        ("<>", "!="),
        ("<", "<"),
        ("<=", "<="),
        (">", ">"),
        (">=", ">="),
    ],
)
def test_comparison_operators(op, expected):
    assert parse_filter(f"metrics.auc {op} 0.5") == cmp("metrics", "auc", expected, 0.5)


def test_in_and_not_in():
    assert parse_filter("params.model in ('rf', 'svm')") == cmp(
        "params", "model", "in", ("rf", "svm")
    )
    assert parse_filter("params.model not in ('rf')") == cmp("params", "model", "not in", ("rf",))
    assert parse_filter("metrics.epoch in (1, 2.5, -3)") == cmp(
        "metrics", "epoch", "in", (1, 2.5, -3)
    )


def test_in_list_may_mix_value_types():
    assert parse_filter("params.x in ('a', 1, true)") == cmp("params", "x", "in", ("a", 1, True))


def test_is_null_and_is_not_null():
    assert parse_filter("tags.note is null") == cmp("tags", "note", "is null")
    assert parse_filter("metrics.loss is not null") == cmp("metrics", "loss", "is not null")
    assert parse_filter("end_time is null") == cmp("attributes", "end_time", "is null")


@pytest.mark.parametrize(
    ("text", "op"),
    [
        ("name like 'rf-%'", "like"),
        ("name not like 'rf-%'", "not like"),
        ("name ilike 'rf-%'", "ilike"),
        ("name not ilike 'rf-%'", "not ilike"),
    ],
)
def test_like_operators(text, op):
    assert parse_filter(text) == cmp("attributes", "name", op, "rf-%")


def test_like_accepts_double_quoted_pattern():
    assert parse_filter('tags.owner like "a%"') == cmp("tags", "owner", "like", "a%")


def test_operator_result_is_frozen():
    node = parse_filter("metrics.a = 1")
    with pytest.raises(AttributeError):
        node.op = "!="  # type: ignore[misc, union-attr]


# --- fields --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "entity"),
    [
        ("metrics", "metrics"),
        ("metric", "metrics"),
        ("params", "params"),
        ("param", "params"),
        ("tags", "tags"),
        ("tag", "tags"),
        ("METRICS", "metrics"),
        ("Params", "params"),
    ],
)
def test_entity_spellings(prefix, entity):
    assert parse_filter(f"{prefix}.k = 1") == cmp(entity, "k", "=", 1)


@pytest.mark.parametrize("prefix", ["attributes", "attribute", "attr"])
def test_attribute_entity_spellings(prefix):
    assert parse_filter(f"{prefix}.status = 'FINISHED'") == cmp(
        "attributes", "status", "=", "FINISHED"
    )


def test_keys_keep_their_case():
    assert parse_filter("params.LearningRate = '0.1'") == cmp("params", "LearningRate", "=", "0.1")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("metrics.val/loss < 1", "val/loss"),
        ("metrics.val-loss < 1", "val-loss"),
        ("metrics.step:10 < 1", "step:10"),
        ("metrics.model.depth < 1", "model.depth"),
        ("metrics.a_b.c-d/e:f < 1", "a_b.c-d/e:f"),
        ("metrics.1st < 1", "1st"),
        ("metrics.`val loss` < 1", "val loss"),
        ('metrics."val loss" < 1', "val loss"),
        ("metrics.`a``b` < 1", "a`b"),
        ('metrics."it""s" < 1', 'it"s'),
        ("metrics.`x > 1 and y` < 1", "x > 1 and y"),
    ],
)
def test_key_forms(text, key):
    assert parse_filter(text) == cmp("metrics", key, "<", 1)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("run_id", "run_id"),
        ("id", "run_id"),
        ("name", "name"),
        ("run_name", "name"),
        ("status", "status"),
        ("experiment", "experiment"),
        ("experiment_id", "experiment_id"),
        ("start_time", "start_time"),
        ("end_time", "end_time"),
        ("parent_run_id", "parent_run_id"),
        ("user", "user"),
        ("STATUS", "status"),
    ],
)
def test_bare_attributes(name, canonical):
    assert parse_filter(f"{name} = 'x'") == cmp("attributes", canonical, "=", "x")


def test_prefixed_attribute_is_normalised():
    assert parse_filter("attributes.id = 'abc'") == cmp("attributes", "run_id", "=", "abc")
    assert parse_filter("attr.`run_name` = 'abc'") == cmp("attributes", "name", "=", "abc")


# --- values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("1", 1),
        ("-1", -1),
        ("+7", 7),
        ("0", 0),
        ("0.5", 0.5),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("-.5", -0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E3", 1000.0),
        ("2.5e-3", 0.0025),
        ("-1e+2", -100.0),
        ("inf", math.inf),
        ("INF", math.inf),
        ("Infinity", math.inf),
        ("+inf", math.inf),
        ("-inf", -math.inf),
        ("-Infinity", -math.inf),
    ],
)
def test_numbers(literal, expected):
    node = parse_filter(f"metrics.x = {literal}")
    assert node == cmp("metrics", "x", "=", expected)
    assert type(node.value) is type(expected)  # type: ignore[union-attr]


@pytest.mark.parametrize("literal", ["nan", "NaN", "NAN", "-nan", "+nan"])
def test_nan(literal):
    node = parse_filter(f"metrics.x != {literal}")
    assert isinstance(node, Comparison)
    assert math.isnan(node.value)  # type: ignore[arg-type]
    assert node == cmp("metrics", "x", "!=", math.nan)  # the shared nan compares equal


def test_negative_number_without_spaces():
    assert parse_filter("metrics.x>-1") == cmp("metrics", "x", ">", -1)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("'rf'", "rf"),
        ('"rf"', "rf"),
        ("''", ""),
        ("'it''s'", "it's"),
        ("'it\\'s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'back\\\\slash'", "back\\slash"),
        ("'a\\_b'", "a\\_b"),
        ("'and or not ( ) , = >'", "and or not ( ) , = >"),
        ("'1.5'", "1.5"),
        ("'héllo wörld'", "héllo wörld"),
    ],
)
def test_strings(literal, expected):
    assert parse_filter(f"params.p = {literal}") == cmp("params", "p", "=", expected)


@pytest.mark.parametrize(("literal", "expected"), [("true", True), ("FALSE", False)])
def test_booleans(literal, expected):
    node = parse_filter(f"tags.flag = {literal}")
    assert node == cmp("tags", "flag", "=", expected)
    assert node.value is expected  # type: ignore[union-attr]


def test_double_quotes_are_key_after_dot_and_value_after_operator():
    node = parse_filter('params."model name" = "random forest"')
    assert node == cmp("params", "model name", "=", "random forest")


def test_params_may_be_compared_with_numbers():
    assert parse_filter("params.C = 1") == cmp("params", "C", "=", 1)


# --- order_by ------------------------------------------------------------------------------


@pytest.mark.parametrize("items", [None, "", "   ", [], (), ["", "  "]])
def test_empty_order_by(items):
    assert parse_order_by(items) == []


def test_order_by_single_items():
    assert parse_order_by("metrics.auc DESC") == [OrderKey("metrics", "auc", True)]
    assert parse_order_by("start_time") == [OrderKey("attributes", "start_time", False)]
    assert parse_order_by("params.C asc") == [OrderKey("params", "C", False)]


def test_order_by_comma_separated_string():
    assert parse_order_by("metrics.auc desc, start_time,params.C ASC") == [
        OrderKey("metrics", "auc", True),
        OrderKey("attributes", "start_time", False),
        OrderKey("params", "C", False),
    ]


def test_order_by_list_and_tuple():
    expected = [OrderKey("metrics", "auc", True), OrderKey("attributes", "name", False)]
    assert parse_order_by(["metrics.auc DESC", "run_name"]) == expected
    assert parse_order_by(("metrics.auc DESC", "run_name")) == expected


def test_order_by_list_items_may_hold_commas():
    assert parse_order_by(["metrics.a, metrics.b desc", "id"]) == [
        OrderKey("metrics", "a", False),
        OrderKey("metrics", "b", True),
        OrderKey("attributes", "run_id", False),
    ]


def test_order_by_quoted_keys():
    assert parse_order_by('metrics.`val loss` desc, tags."a,b"') == [
        OrderKey("metrics", "val loss", True),
        OrderKey("tags", "a,b", False),
    ]


def test_order_by_key_forms():
    assert parse_order_by("metrics.val/loss DESC") == [OrderKey("metrics", "val/loss", True)]


# --- errors: message layout ----------------------------------------------------------------


def test_error_message_layout():
    with pytest.raises(InvalidFilter) as info:
        parse_filter("metrics.auc >")
    assert str(info.value) == (
        "Invalid filter at position 14: expected a value after '>', found end of filter.\n"
        "  metrics.auc >\n"
        "               ^\n"
        "Write comparisons like \"metrics.auc > 0.8 and params.model = 'rf'\"."
    )


def test_error_is_an_invalid_input_and_value_error():
    with pytest.raises(InvalidFilter) as info:
        parse_filter("metrics.auc >")
    assert isinstance(info.value, InvalidInput)
    assert isinstance(info.value, ValueError)
    assert info.value.http_status == 400


def test_caret_points_at_the_problem():
    with pytest.raises(InvalidFilter) as info:
        parse_filter("metrics.a = 1 and metrics.b => 2")
    lines = str(info.value).splitlines()
    assert lines[0].startswith("Invalid filter at position 29: unknown operator '=>'")
    assert lines[2].index("^") == lines[1].index("=>")


def test_caret_stays_aligned_with_newlines_in_filter():
    with pytest.raises(InvalidFilter) as info:
        parse_filter("metrics.a = 1\nand metrics.b ~ 2")
    lines = str(info.value).splitlines()
    assert lines[1] == "  metrics.a = 1 and metrics.b ~ 2"
    assert lines[2].index("^") == lines[1].index("~")


# --- errors: filter ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        # unterminated strings
        ("params.m = 'rf", r"position 12: unterminated string: the ' opened here"),
        ('params.m = "rf', r'position 12: unterminated string: the " opened here'),
        ("params.`m = 'rf'", r"position 8: unterminated string: the ` opened"),
        ("params.m = 'it''s", r"unterminated string"),
        ("params.m = 'rf\\'", r"unterminated string"),
        # unknown operators
        ("metrics.a => 1", r"position 11: unknown operator '=>'"),
        ("metrics.a =< 1", r"unknown operator '=<'"),
        ("metrics.a === 1", r"unknown operator '==='"),
        ("metrics.a ! 1", r"unknown operator '!'"),
        ("metrics.a ~= 1", r"unknown operator '~='"),
        ("metrics.a gt 1", r"unknown operator 'gt'"),
        ("metrics.a between 1", r"unknown operator 'between'"),
        ("metrics.a 1", r"unknown operator '1'"),
        ("metrics.a not = 1", r"expected 'in', 'like' or 'ilike' after 'not', found '='"),
        ("metrics.a is 1", r"expected 'null' after 'is', found '1'"),
        ("metrics.a is not", r"expected 'null' after 'is', found end of filter"),
        ("metrics.a = 1 && metrics.b = 2", r"unexpected character '&'.*\n.*\n.*\nWrite 'and'"),
        ("metrics.a = 1 ; drop", r"unexpected character ';'"),
        # missing pieces
        ("metrics.auc", r"position 12: expected an operator after 'metrics.auc', found end"),
        ("metrics.`a b`", r"expected an operator after 'metrics.`a b`'"),
        ("metrics.auc >", r"position 14: expected a value after '>', found end of filter"),
        ("metrics.auc > and", r"expected a value after '>', found 'and'"),
        ("params.m = rf", r"expected a value after '=', found 'rf'.*\n.*\n.*\nQuote text values"),
        ("metrics.a = )", r"expected a value after '=', found '\)'"),
        ("metrics.a = null", r"null cannot be compared with an operator.*\n.*\n.*\nWrite 'is null"),
        ("params.m = `rf`", r"backticks quote keys, not values"),
        ("metrics.a = 1 and", r"expected a field such as metrics.auc, found end of filter"),
        ("metrics.a = 1 or or metrics.b = 1", r"position 18: expected a field .* found 'or'"),
        ("not", r"expected a field such as metrics.auc, found end of filter"),
        ("and metrics.a = 1", r"position 1: expected a field .* found 'and'"),
        ("= 1", r"expected a field .* found '='"),
        ("1 < metrics.a", r"expected a field .* found '1'"),
        ("'auc' > 1", r"expected a field .* found 'auc'"),
        ("`auc` > 1", r"found `auc`.*\n.*\n.*\nPut the entity before a quoted key"),
        ("()", r"expected a field .* found '\)'"),
        # unbalanced parentheses
        ("(metrics.a = 1", r"position 1: unbalanced parentheses: this '\(' is never closed"),
        ("((metrics.a = 1)", r"position 1: unbalanced parentheses: this '\(' is never closed"),
        ("metrics.a = 1)", r"position 14: unbalanced parentheses: this '\)' has no matching"),
        ("(metrics.a = 1))", r"position 16: unbalanced parentheses"),
        ("(metrics.a = 1 metrics.b = 2)", r"expected '\)', 'and' or 'or', found 'metrics.b'"),
        ("tags.x in ('a', 'b'", r"position 11: unbalanced parentheses: this '\(' is never closed"),
        # trailing garbage
        ("metrics.a = 1 metrics.b = 2", r"position 15: unexpected 'metrics.b' after a complete"),
        ("metrics.a = 1 'x'", r"unexpected 'x' after a complete comparison"),
        ("metrics.a = 1 2", r"unexpected '2' after a complete comparison"),
        ("metrics.a = 1 not", r"unexpected 'not' after a complete comparison"),
        # malformed numbers
        ("metrics.a = 1e", r"position 13: malformed number '1e'"),
        ("metrics.a = 1.2.3", r"malformed number '1.2.3'"),
        ("metrics.a = 10abc", r"malformed number '10abc'"),
        ("metrics.a = -x", r"unexpected character '-'"),
        # empty keys
        ("metrics. > 1", r"position 9: empty key after 'metrics.'.*\n.*\n.*\nPut the key right"),
        ("metrics.> 1", r"position 9: empty key after 'metrics.'"),
        ("metrics.`` > 1", r"position 9: empty key after 'metrics.'"),
        ('params."" = 1', r"empty key after 'params.'"),
        ("metrics. `a` > 1", r"empty key after 'metrics.'"),
        ("metrics.'a' > 1", r"empty key after 'metrics.'"),
        # unknown entities and attributes
        ("metricz.auc > 1", r"unknown entity 'metricz'"),
        ("run.id = 'x'", r"unknown entity 'run'"),
        ("auc > 0.8", r"position 1: unknown attribute 'auc'; did you mean metrics.auc, params.auc"),
        ("val/loss > 0.8", r"did you mean metrics.val/loss, params.val/loss or tags.val/loss\?"),
        ("metrics.a = 1 and lr = 2", r"position 19: unknown attribute 'lr'"),
        ("attributes.foo = 1", r"unknown attribute 'foo'"),
        ("auc > 0.8", r"\nBare names must be one of: run_id, id, name"),
        # in lists
        ("tags.x in ()", r"position 12: 'in' needs at least one value"),
        ("tags.x not in ()", r"'in' needs at least one value"),
        ("tags.x in 'a'", r"expected '\(' after 'in', found 'a'"),
        ("tags.x in", r"expected '\(' after 'in', found end of filter"),
        ("tags.x in ('a',)", r"expected a value after ',', found '\)'"),
        ("tags.x in ('a' 'b')", r"expected ',' or '\)' in the list, found 'b'"),
        ("tags.x in ('a', =)", r"expected a value after ',', found '='"),
        # like patterns
        ("name like 5", r"'like' needs a quoted pattern"),
        ("name not ilike true", r"'ilike' needs a quoted pattern"),
        ("name like", r"expected a value after 'like', found end of filter"),
        ("name like `x`", r"backticks quote keys"),
    ],
)
def test_filter_errors(text, pattern):
    with pytest.raises(InvalidFilter, match=pattern):
        parse_filter(text)


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("metrics.auc = 'high'", 15),
        ('metrics.auc = "high"', 15),
        ("metrics.auc != true", 16),
        ("metrics.auc in (0.5, 'x')", 22),
        ("metric.auc like '0.%'", 12),
        ("metrics.auc not ilike '0.%'", 17),
    ],
)
def test_metrics_must_be_numbers(text, position):
    pattern = (
        rf"position {position}: metrics are numbers; compare metrics.auc with a number such as 0.8"
    )
    with pytest.raises(InvalidFilter, match=pattern):
        parse_filter(text)


def test_every_error_quotes_the_filter_and_has_a_hint():
    with pytest.raises(InvalidFilter) as info:
        parse_filter("metrics.a = 1 and params.b in ()")
    lines = str(info.value).splitlines()
    assert len(lines) == 4
    assert lines[1] == "  metrics.a = 1 and params.b in ()"
    assert lines[2].strip() == "^"
    assert lines[3].endswith(".")


# --- errors: order_by ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "pattern"),
    [
        ("metrics.auc DOWN", r"Invalid order_by at position 13: unknown sort direction 'DOWN'"),
        ("metrics.auc DOWN", r"\nUse ASC or DESC"),
        ("auc DESC", r"Invalid order_by at position 1: unknown attribute 'auc'; did you mean"),
        (["start_time", "lr"], r"unknown attribute 'lr'"),
        ("metrics.auc desc desc", r"expected ',' or end, found 'desc'"),
        ("metrics.auc > 1", r"expected ',' or end, found '>'"),
        ("metrics.auc,", r"expected a field such as metrics.auc, found end of order_by"),
        ("metrics.auc,,start_time", r"position 13: expected a field .* found ','"),
        ("metrics. desc", r"empty key after 'metrics.'"),
        ("metricz.auc", r"unknown entity 'metricz'"),
        ("'auc' desc", r"expected a field"),
        ("metrics.`auc", r"unterminated string"),
        ("desc", r"unknown attribute 'desc'"),
        ([42], r"order_by items must be strings"),
    ],
)
def test_order_by_errors(items, pattern):
    with pytest.raises(InvalidFilter, match=pattern):
        parse_order_by(items)


def test_order_by_error_layout():
    with pytest.raises(InvalidFilter) as info:
        parse_order_by("metrics.auc DOWN")
    assert str(info.value) == (
        "Invalid order_by at position 13: unknown sort direction 'DOWN'.\n"
        "  metrics.auc DOWN\n"
        "              ^\n"
        'Use ASC or DESC, e.g. "metrics.auc DESC".'
    )


@pytest.mark.parametrize("digits", [19, 400, 4400, 7999])
def test_integers_past_int64_are_compared_as_floats(digits):
    """An integer literal too long for int64 (or for Python's int() of a string, past 4,300
    digits) is read as a float (inf when past the float range), never an error."""
    expr = parse_filter(f"metrics.a > {'9' * digits}")
    assert isinstance(expr.value, float)
    assert expr.value == float("9" * digits)


def test_integers_that_fit_int64_stay_exact():
    assert parse_filter("params.n = 999999999999999999").value == 999_999_999_999_999_999
