"""Quick start: track a small hyperparameter search, then find and compare the best runs.

Trains several scikit-learn models with different hyperparameters on the breast-cancer
dataset that ships with scikit-learn, records each as a run (params, per-fold metrics,
a confusion-matrix artifact, the environment), then asks the store for the best run with
``search_runs`` and prints a comparison table.

Run it with ``make demo`` (on the demo's own store, ./.loopwise-demo, reset each time), or
with ``python examples/quickstart.py`` (on ./.loopwise, or where LOOPWISE_STORE_URL /
LOOPWISE_ARTIFACTS_URL point).
"""

from __future__ import annotations

import time

import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import loopwise as lw

EXPERIMENT = "breast-cancer"
CANDIDATES = [
    ("logreg", {"C": 0.1}),
    ("logreg", {"C": 1.0}),
    ("logreg", {"C": 10.0}),
    ("random_forest", {"n_estimators": 50, "max_depth": 4}),
    ("random_forest", {"n_estimators": 200, "max_depth": None}),
    ("gradient_boosting", {"n_estimators": 100, "learning_rate": 0.1}),
]


def build(model: str, params: dict):
    if model == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, **params))
    if model == "random_forest":
        return RandomForestClassifier(random_state=0, **params)
    return GradientBoostingClassifier(random_state=0, **params)


def main() -> None:
    console = Console(width=max(Console().width, 110))
    X, y = load_breast_cancer(return_X_y=True)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    started = time.time()
    with lw.start_run(experiment=EXPERIMENT, name="search", tags={"kind": "sweep"}) as sweep:
        for model, params in CANDIDATES:
            with lw.start_run(tags={"model_family": model}):
                lw.log_param("model", model)
                lw.log_params(params)
                aucs, accs, f1s = [], [], []
                for fold, (train, test) in enumerate(folds.split(X, y)):
                    clf = build(model, params).fit(X[train], y[train])
                    proba = clf.predict_proba(X[test])[:, 1]
                    pred = (proba >= 0.5).astype(int)
                    aucs.append(roc_auc_score(y[test], proba))
                    accs.append(accuracy_score(y[test], pred))
                    f1s.append(f1_score(y[test], pred))
                    lw.log_metrics({"fold_auc": aucs[-1], "fold_accuracy": accs[-1]}, step=fold)
                lw.log_metrics(
                    {
                        "auc": sum(aucs) / len(aucs),
                        "accuracy": sum(accs) / len(accs),
                        "f1": sum(f1s) / len(f1s),
                    }
                )
                matrix = confusion_matrix(y[test], pred).tolist()
                lw.log_dict({"labels": [0, 1], "matrix": matrix}, "confusion_matrix.json")
        console.print(f"tracked {len(CANDIDATES)} runs in {time.time() - started:.1f}s")

    best = lw.search_runs(
        experiment=EXPERIMENT,
        filter=f"attributes.parent_run_id = '{sweep.id}' and metrics.auc > 0.9",
        order_by=["metrics.auc DESC", "metrics.f1 DESC"],
        max_results=3,
    )
    top = best.iloc[0]
    console.print(
        f"\n[bold]best run[/bold]: {top['name']} ({top['run_id']})  "
        f"model={top['params.model']}  auc={top['metrics.auc']:.4f}"
    )

    table = Table(title="top runs by AUC")
    table.add_column("run")
    table.add_column("model")
    table.add_column("params")
    for metric in ("auc", "accuracy", "f1"):
        table.add_column(metric, justify="right")
    for _, row in best.iterrows():
        params = ", ".join(
            f"{col.removeprefix('params.')}={row[col]}"
            for col in best.columns
            if col.startswith("params.") and col != "params.model" and pd.notna(row[col])
        )
        table.add_row(
            row["name"],
            row["params.model"],
            params,
            *(f"{row[f'metrics.{m}']:.4f}" for m in ("auc", "accuracy", "f1")),
        )
    console.print(table)
    console.print(f"compare them: loopwise runs compare {' '.join(best['run_id'])}")


if __name__ == "__main__":
    main()
