"""Tests for loopwise.tracking.naming: run names and key naming rules."""

from __future__ import annotations

import random
import re

import pytest

from loopwise.errors import ConfigurationError, InvalidInput
from loopwise.tracking import naming
from loopwise.tracking.naming import NamingRule, generate_run_name, naming_rule


def test_run_names_are_readable():
    for _ in range(200):
        name = generate_run_name()
        adjective, animal, number = name.split("-")
        assert adjective in naming._ADJECTIVES
        assert animal in naming._ANIMALS
        assert 0 <= int(number) <= 999
        assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,3}", name)


def test_run_names_are_reproducible_with_an_rng():
    assert generate_run_name(random.Random(7)) == generate_run_name(random.Random(7))
    assert len({generate_run_name() for _ in range(50)}) > 40


def test_word_lists_are_large_and_unique():
    for words in (naming._ADJECTIVES, naming._ANIMALS):
        assert len(words) >= 60
        assert len(set(words)) == len(words)


@pytest.mark.parametrize(
    "key",
    ["C", "n_estimators", "val/loss", "roc_AUC", "layer.0.weight", "f1", "LR", "a/b.c_D/0"],
)
def test_snake_case_accepts(key):
    naming_rule("snake_case").check(key, kind="Param key")


@pytest.mark.parametrize(
    "key",
    ["learningRate", "learning-rate", "my key", "_x", "x_", "x__y", "a/", "/a", "a//b", "", "Ab"],
)
def test_snake_case_rejects(key):
    with pytest.raises(InvalidInput):
        naming_rule("snake_case").check(key, kind="Param key")


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("learningRate", "learning_rate"),
        ("learning-rate", "learning_rate"),
        ("My Key", "my_key"),
        ("val/trainLoss", "val/train_loss"),
        ("HTTPStatus", "http_status"),
        ("x__y", "x_y"),
        ("a/", "a"),
        ("température", "temperature"),
    ],
)
def test_snake_case_suggests_a_spelling(key, suggestion):
    with pytest.raises(InvalidInput, match=f"Use '{suggestion}' instead"):
        naming_rule("snake_case").check(key, kind="Metric key")


def test_message_format():
    with pytest.raises(InvalidInput) as caught:
        naming_rule("snake_case").check("learningRate", kind="Metric key", owner="run 01JD")
    assert str(caught.value) == (
        "Metric key 'learningRate' of run 01JD does not follow the naming rule 'snake_case' "
        "(words of lower-case or upper-case letters and digits joined by '_', segments "
        "separated by '/' or '.'). Use 'learning_rate' instead, or set LOOPWISE_KEY_RULE "
        "(for example to 'printable') to change the rule."
    )


def test_message_without_owner_or_suggestion():
    with pytest.raises(InvalidInput) as caught:
        naming_rule("snake_case").check("", kind="Tag key")
    message = str(caught.value)
    assert message.startswith("Tag key '' does not follow the naming rule 'snake_case'")
    assert " of " not in message.split("(")[0]
    assert "Set LOOPWISE_KEY_RULE (for example to 'printable') to change the rule." in message


def test_setting_named_in_message_can_be_changed():
    with pytest.raises(InvalidInput, match="set LOOPWISE_MODEL_NAME_RULE"):
        naming_rule("kebab-case").check(
            "My Model", kind="Model name", setting="LOOPWISE_MODEL_NAME_RULE"
        )


@pytest.mark.parametrize("spec", ["printable", "snake_case", "kebab-case", "any", r"[a-z]+"])
def test_length_limit(spec):
    rule = naming_rule(spec)
    rule.check("a" * 250, kind="Param key")
    with pytest.raises(InvalidInput) as caught:
        rule.check("a" * 251, kind="Param key", owner="run X")
    assert str(caught.value) == (
        f"Param key '{'a' * 40}'... of run X is 251 characters long; the limit is 250."
    )


@pytest.mark.parametrize("key", ["fraud-detector", "team/churn-v2", "m1"])
def test_kebab_case_accepts(key):
    naming_rule("kebab-case").check(key, kind="Model name")


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("fraud_detector", "fraud-detector"), ("FraudDetector", "fraud-detector"), ("a--b", "a-b")],
)
def test_kebab_case_rejects_and_suggests(key, suggestion):
    with pytest.raises(InvalidInput, match=f"Use '{suggestion}' instead"):
        naming_rule("kebab-case").check(key, kind="Model name")


@pytest.mark.parametrize("key", ["learningRate", "my key", "ü/ß (x)", "a-b.c"])
def test_any_accepts_printable_text(key):
    naming_rule("any").check(key, kind="Tag key")


@pytest.mark.parametrize("key", ["", "a\nb", "tab\there", "nul\x00", "del\x7f", "x\ud800"])
def test_any_rejects_control_characters(key):
    with pytest.raises(InvalidInput):
        naming_rule("any").check(key, kind="Tag key")


def test_custom_regex_must_match_whole_key():
    rule = naming_rule(r"[a-z]+(_[a-z]+)*")
    rule.check("val_loss", kind="Metric key")
    with pytest.raises(InvalidInput, match=r"naming rule '\[a-z\]\+"):
        rule.check("val_loss2", kind="Metric key")
    with pytest.raises(InvalidInput, match="Use 'learning_rate' instead"):
        rule.check("learningRate", kind="Metric key")


def test_invalid_regex_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match=r"'\[unclosed'"):
        naming_rule("[unclosed")


def test_non_string_key_is_rejected():
    with pytest.raises(InvalidInput, match="must be a string, not int"):
        naming_rule("snake_case").check(3, kind="Param key")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="not list"):
        naming_rule("any").check([], kind="Param key")  # type: ignore[arg-type]


def test_rules_are_shared_and_accepted_keys_cached():
    rule = naming_rule("snake_case")
    assert rule is naming_rule("snake_case")
    assert isinstance(rule, NamingRule)
    rule.check("cached_key", kind="Metric key")
    assert "cached_key" in rule._accepted
    rule.check("cached_key", kind="Metric key")  # the fast path
    with pytest.raises(InvalidInput):
        rule.check("cachedKey", kind="Metric key")
    assert "cachedKey" not in rule._accepted


def test_rule_is_frozen():
    rule = naming_rule("snake_case")
    with pytest.raises(AttributeError):
        rule.name = "other"  # type: ignore[misc]


# --- the default rule: what libraries produce ---------------------------------------------

LIBRARY_KEYS = [
    # scikit-learn: get_params of pipelines, cv_results_ columns, classification_report
    "memory", "steps", "verbose", "standardscaler__copy", "clf__C", "clf__class_weight",
    "prep__num__scaler__with_mean", "param_clf__C", "split0_test_score", "macro avg",
    # XGBoost and LightGBM
    "learning_rate", "n_estimators", "reg_alpha", "validation_0-logloss", "map@10",
    "ndcg@5-", "valid_0's binary_logloss", "train-rmse",
    # PyTorch Lightning, TensorBoard, Hugging Face
    "lr-Adam", "lr-Adam/pg1", "lr-SGD-momentum", "val/loss", "train_loss_step", "Loss/train",
    "eval_loss", "train.loss",
    # Keras and what people type
    "val_loss", "epoch_loss", "sparse_categorical_accuracy", "val_auc_1", "learningRate",
    "f1 (macro)", "_private", "1st", "été", "a  b",
]  # fmt: skip


def test_default_key_rule_is_printable():
    from loopwise.config import Settings

    assert naming.DEFAULT_KEY_RULE == "printable"
    assert Settings().key_rule == "printable"


@pytest.mark.parametrize("key", LIBRARY_KEYS)
def test_printable_accepts_the_keys_libraries_produce(key):
    naming_rule("printable").check(key, kind="Param key")


def test_printable_accepts_every_get_params_key_of_a_nested_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer([("num", StandardScaler(), [0]), ("cat", OneHotEncoder(), [1])])
    pipe = Pipeline([("prep", prep), ("clf", make_pipeline(LogisticRegression()))])
    keys = list(pipe.get_params(deep=True))
    assert "prep__num__with_mean" in keys
    assert "clf__logisticregression__C" in keys
    rule = naming_rule("printable")
    for key in keys:
        rule.check(key, kind="Param key")


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        (" loss", "loss"),
        ("loss ", "loss"),
        ("val\nloss", "val loss"),
        ("val\tloss", "val loss"),
        ("a\u200bb", "ab"),
        ("\ufeffloss", "loss"),
        ("auc\u202e", "auc"),
        ("x\ud800", "x"),
    ],
)
def test_printable_refuses_what_cannot_be_shown_or_stored(key, suggestion):
    with pytest.raises(InvalidInput) as caught:
        naming_rule("printable").check(key, kind="Metric key", owner="run 01JD")
    message = str(caught.value)
    assert "does not follow the naming rule 'printable'" in message
    assert message.endswith(f"Use {suggestion!r} instead.")
    assert "LOOPWISE_KEY_RULE" not in message  # no looser rule to recommend


@pytest.mark.parametrize("key", ["", " ", "\t", "\ud800"])
def test_printable_refuses_keys_with_nothing_to_show(key):
    with pytest.raises(InvalidInput, match=r"Choose a key that does\.$"):
        naming_rule("printable").check(key, kind="Tag key")


@pytest.mark.parametrize("key", [*LIBRARY_KEYS, "a`b", 'say "hi"', "x\\y", "and", "it's"])
def test_printable_keys_can_be_written_in_a_filter(key):
    from loopwise.tracking.filter_parser import parse_filter, parse_order_by

    naming_rule("printable").check(key, kind="Metric key")
    quoted = "`" + key.replace("`", "``") + "`"
    assert parse_filter(f"metrics.{quoted} > 0.5").key == key
    assert parse_order_by(f"params.{quoted} DESC")[0].key == key


def test_double_quoted_key_from_the_docs_parses():
    from loopwise.tracking.filter_parser import parse_filter

    assert parse_filter('metrics."f1 (macro)" > 0.5').key == "f1 (macro)"
