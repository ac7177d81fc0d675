"""References parse one way everywhere, and bad ones say which forms are accepted."""

from __future__ import annotations

import pytest

from loopwise.errors import InvalidReference
from loopwise.refs import Ref, parse_ref, run_id_of

RUN_ID = "01m88zr0dpg3a49hvwzpmzbwdv"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"runs:/{RUN_ID}", Ref("runs", RUN_ID)),
        ("runs:/calm-tiger-826", Ref("runs", "calm-tiger-826")),  # a run name
        ("models:/credit-risk/3", Ref("models", "credit-risk", version=3)),
        ("models:/credit-risk@champion", Ref("models", "credit-risk", alias="champion")),
        ("models:/credit-risk", Ref("models", "credit-risk")),
        ("datasets:/loans/7", Ref("datasets", "loans", version=7)),
        ("datasets:/loans@latest", Ref("datasets", "loans", alias="latest")),
        ("endpoints:/scoring", Ref("endpoints", "scoring")),
    ],
)
def test_parse_and_print(text, expected):
    assert parse_ref(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text",
    [
        "credit-risk",
        "model:/x/1",
        "models:/",
        "models:/x/one",
        "models:/x@",
        "runs:/",
        "runs:/ padded ",
        "endpoints:/x/1",
        "datasets:/a b/1",
    ],
)
def test_bad_references(text):
    with pytest.raises(InvalidReference, match=r"runs:/<run id>|26-character"):
        parse_ref(text)


def test_kind_is_enforced_and_run_ids_pass_through():
    with pytest.raises(InvalidReference, match="Expected a runs:/ reference"):
        parse_ref("models:/x/1", kind="runs")
    assert run_id_of(f"runs:/{RUN_ID}") == RUN_ID
    assert run_id_of(RUN_ID) == RUN_ID


def test_api_accepts_run_references(lw):
    with lw.start_run(experiment="refs") as run:
        lw.log_metric("m", 1.0)
    assert lw.get_run(run.uri).id == run.id
    assert len(lw.get_metric_history(run.uri, "m")) == 1
