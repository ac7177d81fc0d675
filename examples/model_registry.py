"""The model registry: promote a champion through a policy, refuse an unfair challenger.

1. A credit-risk model is trained in a run on a versioned dataset, registered, and
   promoted to ``champion`` through a policy (hurdle rates, no worse than the current
   holder, per-region floors, smoke tests, latency and size budgets).
2. A challenger that is better overall but was trained without the southern region is
   refused: the gate names the slice and the shortfall, and ``champion`` does not move.
3. ``version_at`` answers which version was champion at a past moment; an override and a
   rollback show the alias history.

Run it with ``make demo`` or ``python examples/model_registry.py``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

import loopwise as lw

FEATURES = ["age", "income", "debt_ratio", "is_south", "young_south"]
NOT_SOUTH = {"is_south": 0, "young_south": 0}
POLICY = {
    "task": "classification",
    "thresholds": {"roc_auc": 0.75, "recall": 0.55},
    "vs_current": {"metric": "roc_auc", "max_drop": 0.01},
    "slices": {
        "columns": ["region"],
        "min": {"recall": 0.5},
        "max_gap": {"recall": 0.3},
        "min_rows": 50,
    },
    "smoke_tests": [
        {
            "input": {
                "age": 30,
                "income": 20000,
                "debt_ratio": 0.9,
                "is_south": 0,
                "young_south": 0,
            },
            "expect": 1,
        },
        {
            "input": {
                "age": 60,
                "income": 90000,
                "debt_ratio": 0.1,
                "is_south": 0,
                "young_south": 0,
            },
            "expect": 0,
        },
    ],
    "latency_p95_ms": 250,
    "max_size_mb": 50,
}


def make_loans(n: int, seed: int) -> pd.DataFrame:
    """Synthetic loans: default risk is non-linear in debt, and works differently in the south."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.33, 0.05, 0.31, 0.31])
    frame = pd.DataFrame(
        {
            "age": rng.integers(21, 75, n),
            "income": rng.lognormal(10.7, 0.45, n).round(0),
            "debt_ratio": rng.beta(2, 4, n).round(3),
            "region": region,
        }
    )
    frame["is_south"] = (region == "south").astype(int)
    frame["young_south"] = frame["is_south"] * (frame["age"] < 35)
    elsewhere = (
        3.0 * (frame["debt_ratio"] > 0.45)
        + 2.0 * frame["debt_ratio"]
        - (frame["income"] - 45_000) / 25_000
        - (frame["age"] - 45) / 30
    )
    # In the south, young borrowers default far more often, whatever their debt.
    south = 4.0 * frame["young_south"] + 0.5 * frame["debt_ratio"] - 0.8
    risk = np.where(frame["is_south"] == 1, south, elsewhere)
    frame["default"] = (risk + rng.logistic(0, 0.6, n) > 1.2).astype(int)
    return frame


def main() -> None:
    train, holdout = make_loans(12_000, seed=1), make_loans(6_000, seed=2)

    # 1. The champion: a logistic regression trained on all regions.
    with lw.start_run(experiment="credit-risk", name="champion-logreg"):
        lw.log_dataset(train, name="loans-train")
        model = LogisticRegression(max_iter=3000).fit(train[FEATURES], train["default"])
        first = lw.log_model(model, name="credit-risk", input_example=train[FEATURES][:5])
    before_promotion = datetime.now(UTC)
    time.sleep(0.01)
    decision = lw.promote(
        first.uri, alias="champion", policy=POLICY, data=holdout, target="default"
    )
    print(decision.summary())

    # 2. The challenger: gradient boosting, better overall, but trained without the south.
    elsewhere = train[train["region"] != "south"]
    with lw.start_run(experiment="credit-risk", name="challenger-gbm"):
        lw.log_dataset(elsewhere, name="loans-train-no-south")
        gbm = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=0)
        gbm.fit(elsewhere[FEATURES], elsewhere["default"])
        second = lw.log_model(gbm, name="credit-risk", input_example=train[FEATURES][:5])
    overall = {
        name: lw.evaluate(uri, holdout, target="default").metrics["roc_auc"]
        for name, uri in (("champion", first.uri), ("challenger", second.uri))
    }
    print(
        f"\noverall ROC-AUC: champion {overall['champion']:.4f}, "
        f"challenger {overall['challenger']:.4f}"
    )
    decision = lw.promote(
        second.uri, alias="champion", policy=POLICY, data=holdout, target="default"
    )
    print(decision.summary())
    champion = lw.get_model_version("models:/credit-risk@champion")
    print(f"champion is still {champion.uri}")

    # 3. History: what was live when, an override, and a rollback.
    print(
        "\nchampion before the first promotion:",
        lw.version_at("credit-risk", alias="champion", at=before_promotion),
        "| now:",
        lw.version_at("credit-risk", alias="champion", at=datetime.now(UTC)),
    )
    lw.set_alias("credit-risk", "champion", second.version, reason="manual override for a test")
    lw.rollback("credit-risk", alias="champion", reason="override reverted")
    print("alias history:")
    for move in lw.alias_history("credit-risk", "champion"):
        print(
            f"  {move.moved_at:%H:%M:%S}  {move.kind:<8} {move.from_version} -> "
            f"{move.to_version}  by {move.moved_by}: {move.reason}"
        )
    lineage = lw.model_lineage("models:/credit-risk@champion")
    print(
        f"\nchampion lineage: run {lineage.run.name} ({lineage.run.id}), trained on "
        f"{', '.join(d.uri for d in lineage.datasets)}, {len(lineage.evaluations)} evaluations"
    )


if __name__ == "__main__":
    main()
