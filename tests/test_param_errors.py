"""The two error templates every check uses: a function's parameter, and a document's key path
with a "did you mean" suggestion."""

from __future__ import annotations

import pytest

from loopwise.errors import InvalidInput
from loopwise.ids import label_pattern, slug_pattern
from loopwise.param_errors import (
    bad_param,
    check_choice,
    closest,
    join_path,
    path_error,
    refuse_unknown_keys,
    renamed,
    renamed_attribute,
    suggestion,
)


def test_the_parameter_template():
    error = bad_param("detect_drift", "alpha", "a share in (0, 1]", -1)
    assert isinstance(error, InvalidInput)
    assert (
        str(error)
        == "The 'alpha' parameter of detect_drift must be a share in (0, 1]. Got -1 instead."
    )


def test_key_paths():
    assert join_path("", "checks") == "checks"
    assert join_path("checks", "schema") == "checks.schema"
    assert str(path_error("window", "must be 1h")) == "window: must be 1h"
    assert str(path_error("", "must be a mapping")) == "must be a mapping"


def test_suggestions():
    assert closest("pis", ["psi", "ks"]) == "psi"
    assert closest("drift", ["feature_drift", "schema"]) == "feature_drift"  # contains it
    assert closest("zzz", ["psi", "ks"]) is None
    assert suggestion("pis", ["psi", "ks"]) == " — did you mean 'psi'?"
    assert suggestion("zzz", ["psi", "ks"]) == " — expected one of: psi, ks."


def test_unknown_keys_and_choices_read_the_same_everywhere():
    with pytest.raises(InvalidInput) as unknown:
        refuse_unknown_keys({"window": 1, "windw": 2}, ("window", "endpoint"), "")
    assert str(unknown.value) == "windw: unknown key 'windw' — did you mean 'window'?"
    with pytest.raises(InvalidInput) as nested:
        refuse_unknown_keys({"methd": "psi"}, ("method", "threshold"), "checks.feature_drift")
    assert (
        str(nested.value)
        == "checks.feature_drift.methd: unknown key 'methd' — did you mean 'method'?"
    )
    assert check_choice("psi", ("psi", "ks"), "method", "test") == "psi"
    with pytest.raises(InvalidInput, match=r"^method: unknown test 'pis' — did you mean 'psi'\?$"):
        check_choice("pis", ("psi", "ks"), "method", "test")


def test_name_patterns():
    slug = slug_pattern()
    assert [bool(slug.fullmatch(n)) for n in ("credit-risk_2", "a" * 63, "a" * 64)] == [
        True,
        True,
        False,
    ]
    assert not any(slug.fullmatch(n) for n in ("Credit", "-x", "a.b"))
    label = label_pattern(64)
    assert [bool(label.fullmatch(n)) for n in ("CI.deploy-2", "x" * 64, "x" * 65, ".x")] == [
        True,
        True,
        False,
        False,
    ]


def _old_api(start=None, since=None):
    return renamed("old_api", "start", start, "since", since)


def test_a_renamed_parameter_warns_at_the_callers_line_and_refuses_both():
    assert _old_api(start=1) == 1
    assert _old_api() is None
    with pytest.warns(DeprecationWarning, match="old_api") as caught:
        assert _old_api(since=2) == 2
    (warning,) = caught
    assert str(warning.message) == "old_api(since=...) is deprecated; use old_api(start=...)."
    assert warning.filename == __file__  # the caller's line, not loopwise's
    with pytest.raises(InvalidInput) as refused:
        _old_api(start=1, since=2)
    assert str(refused.value) == (
        "old_api takes 'start' or its deprecated name 'since', not both. "
        "Got start=1 and since=2; drop 'since'."
    )


def test_a_renamed_attribute_warns_at_the_callers_line():
    class Thing:
        @property
        def label(self):
            renamed_attribute("Thing", "target", "label")
            return 1

    with pytest.warns(DeprecationWarning, match=r"^Thing.label is deprecated; use Thing.target.$"):
        assert Thing().label == 1
