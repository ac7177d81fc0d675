"""Promotion through a policy: the alias moves only when every gate passes, and every
decision is recorded; on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select

from loopwise.errors import Conflict, InvalidInput

pytestmark = pytest.mark.remote_conformance

FEATURES = ["age", "income"]


def _data(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50_000, 15_000, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    score = (frame["age"] - 45) / 15 + (frame["income"] - 50_000) / 15_000
    frame["y"] = (score + rng.normal(0, 0.4, n) > 0).astype(int)
    return frame


def _register(lw, train: pd.DataFrame) -> int:
    model = LogisticRegression(max_iter=2000).fit(train[FEATURES], train["y"])
    return lw.log_model(model, name="credit-risk", input_example=train[FEATURES][:5]).version


POLICY = {
    "task": "classification",
    "thresholds": {"roc_auc": 0.75, "recall": 0.6},
    "vs_current": {"metric": "roc_auc", "max_drop": 0.01},
    "slices": {"columns": ["region"], "min": {"recall": 0.55}, "min_rows": 30},
    "smoke_tests": [{"input": {"age": 75, "income": 90000}, "expect": 1}],
    "max_size_mb": 50,
}


def _decisions(store):
    from loopwise.store.tables import promotion_decisions

    with store.db.read() as conn:
        return conn.execute(select(promotion_decisions)).all()


def test_good_model_is_promoted_and_the_decision_recorded(lw):
    from loopwise import context

    holdout = _data(seed=1)
    version = _register(lw, _data())
    decision = lw.promote(
        f"models:/credit-risk/{version}", alias="champion", policy=POLICY, data=holdout,
        target="y",
    )  # fmt: skip
    assert decision.passed, decision.summary()
    assert {c.name for c in decision.checks} >= {
        "threshold:roc_auc",
        "threshold:recall",
        "vs_current:roc_auc",
        "smoke_test:1",
        "model_size",
    }
    assert lw.get_model_version("models:/credit-risk@champion").version == version
    assert lw.alias_history("credit-risk", "champion")[-1].reason.startswith("promoted by policy")
    rows = _decisions(context.get_store())
    assert [(r.candidate_version, r.passed) for r in rows] == [(version, True)]
    assert lw.model_lineage(f"models:/credit-risk/{version}").evaluations


def test_challenger_worse_on_a_slice_is_refused(lw, tmp_path):
    train = _data()
    champion = _register(lw, train)
    lw.set_alias("credit-risk", "champion", champion)
    poisoned = train.copy()
    south = poisoned["region"] == "south"
    poisoned.loc[south, "y"] = 1 - poisoned.loc[south, "y"]  # learns the wrong thing for south
    # Train the challenger on the poisoned labels but only on south rows, so it is bad there.
    challenger_model = LogisticRegression(max_iter=2000).fit(
        poisoned.loc[south, FEATURES], poisoned.loc[south, "y"]
    )
    challenger = lw.log_model(
        challenger_model, name="credit-risk", input_example=train[FEATURES][:5]
    ).version
    policy_file = tmp_path / "policy.yaml"
    import yaml

    policy_file.write_text(yaml.safe_dump(POLICY))
    decision = lw.promote(
        f"models:/credit-risk/{challenger}", alias="champion", policy=str(policy_file),
        data=_data(seed=2), target="y",
    )  # fmt: skip
    assert not decision.passed
    assert decision.failed_checks
    assert any("recall" in reason or "roc_auc" in reason for reason in decision.reasons)
    assert decision.move is None
    assert lw.get_model_version("models:/credit-risk@champion").version == champion
    assert "refused" in decision.summary()


def test_slice_floor_names_the_slice(lw):
    holdout = _data(seed=3)
    version = _register(lw, _data())
    strict = {**POLICY, "slices": {"columns": ["region"], "min": {"recall": 0.999}}}
    decision = lw.promote(
        f"models:/credit-risk/{version}", alias="champion", policy=strict, data=holdout,
        target="y",
    )  # fmt: skip
    failed = [c for c in decision.checks if c.name.startswith("slice_min") and not c.passed]
    assert failed
    assert failed[0].slice.startswith("region=")
    assert failed[0].slice in failed[0].message


def test_promoting_the_current_holder_is_a_conflict(lw):
    version = _register(lw, _data())
    lw.set_alias("credit-risk", "champion", version)
    with pytest.raises(Conflict, match="already holds @champion"):
        lw.promote(
            f"models:/credit-risk/{version}", alias="champion", policy=POLICY, data=_data(),
            target="y",
        )  # fmt: skip


def test_a_candidate_whose_labels_are_not_the_targets_is_refused_before_any_decision(lw):
    from loopwise import context

    version = _register(lw, _data())  # trained on 0/1
    holdout = _data(seed=1)
    holdout["y"] = np.where(holdout["y"] == 1, "Yes", "No")
    with pytest.raises(InvalidInput, match=r"\{0, 1\}.*target 'y' \{'No', 'Yes'\} share no value"):
        lw.promote(
            f"models:/credit-risk/{version}", alias="champion", policy=POLICY, data=holdout,
            target="y",
        )  # fmt: skip
    assert _decisions(context.get_store()) == []
    assert lw.list_model_versions("credit-risk")[0].aliases == []


def test_a_current_holder_trained_on_other_labels_fails_vs_current_and_says_why(lw):
    train = _data()
    on_text = LogisticRegression(max_iter=2000).fit(
        train[FEATURES], np.where(train["y"] == 1, "Yes", "No")
    )
    old = lw.log_model(on_text, name="credit-risk", input_example=train[FEATURES][:5]).version
    lw.set_alias("credit-risk", "champion", old)
    candidate = _register(lw, train)
    policy = {k: v for k, v in POLICY.items() if k != "smoke_tests"}
    decision = lw.promote(
        f"models:/credit-risk/{candidate}", alias="champion", policy=policy, data=_data(seed=1),
        target="y",
    )  # fmt: skip
    assert not decision.passed
    [failed] = decision.failed_checks
    assert failed.name == "vs_current:roc_auc"
    assert "current holder's labels {'No', 'Yes'} are not those of target {0, 1}" in failed.message
    assert failed.details["current_labels"] == ["No", "Yes"]
    assert lw.get_model_version("models:/credit-risk@champion").version == old
    # a policy that does not compare with the holder does not need to score it
    policy.pop("vs_current")
    decision = lw.promote(
        f"models:/credit-risk/{candidate}", alias="champion", policy=policy, data=_data(seed=1),
        target="y",
    )  # fmt: skip
    assert decision.passed, decision.summary()


def test_alias_moved_during_evaluation_is_a_conflict(lw, monkeypatch):
    import loopwise.registry.promotion as promotion

    first = _register(lw, _data())
    second = _register(lw, _data(seed=5))
    real = promotion.run_gates

    def sneaky(*args, **kwargs):
        lw.set_alias("credit-risk", "champion", first)  # someone else promotes meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(promotion, "run_gates", sneaky)
    with pytest.raises(Conflict, match="while models:/credit-risk/2 was being evaluated"):
        lw.promote(
            f"models:/credit-risk/{second}", alias="champion", policy=POLICY, data=_data(),
            target="y",
        )  # fmt: skip
    history = lw.alias_history("credit-risk", "champion")
    assert [h.to_version for h in history] == [first]


def test_concurrent_promotions_of_one_alias_one_wins_and_history_stays_consistent(lw, monkeypatch):
    import threading

    import loopwise.registry.promotion as promotion
    from loopwise import context

    champion = _register(lw, _data())
    lw.set_alias("credit-risk", "champion", champion)
    candidates = [_register(lw, _data(seed=seed)) for seed in (3, 4)]
    real = promotion.run_gates
    both_evaluated = threading.Barrier(2, timeout=120)

    def in_step(*args, **kwargs):
        checks = real(*args, **kwargs)
        both_evaluated.wait()  # both compared with the same holder before either records
        return checks

    monkeypatch.setattr(promotion, "run_gates", in_step)
    outcomes: dict[int, object] = {}

    def promote(version: int) -> None:
        try:
            outcomes[version] = lw.promote(
                f"models:/credit-risk/{version}", alias="champion", policy=POLICY,
                data=_data(seed=1), target="y",
            )  # fmt: skip
        except Exception as e:  # collected and checked below
            outcomes[version] = e

    threads = [threading.Thread(target=promote, args=(v,)) for v in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    won = [v for v, o in outcomes.items() if isinstance(o, promotion.Decision)]
    lost = [v for v, o in outcomes.items() if isinstance(o, Conflict)]
    assert len(won) == 1, outcomes
    assert len(lost) == 1, outcomes
    decision = outcomes[won[0]]
    assert decision.passed
    assert decision.move.from_version == champion
    assert f"moved from version {champion} to {won[0]}" in str(outcomes[lost[0]])
    history = lw.alias_history("credit-risk", "champion")
    assert [(h.from_version, h.to_version) for h in history] == [
        (None, champion),
        (champion, won[0]),
    ]
    assert lw.get_model_version("models:/credit-risk@champion").version == won[0]
    rows = _decisions(context.get_store())
    assert [(r.candidate_version, r.passed) for r in rows] == [(won[0], True)]
