"""Data checks: version the training data, infer its schema, reject a bad batch, see drift.

1. The breast-cancer training data (bundled with scikit-learn) is logged as a dataset
   version inside a run, so the run's lineage records what it trained on.
2. A schema is inferred from it and saved as YAML for review.
3. A clean new batch passes validation; a batch with injected problems (a renamed column,
   out-of-range values, nulls, placeholder -1 values, text in a number column) is
   rejected with a readable report.
4. A batch from a drifted source is compared with the training data.

Run it with ``make demo`` or ``python examples/data_checks.py``; reports are written to
``./reports/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer

import loopwise as lw

REPORTS = Path("reports")


def main() -> None:
    data = load_breast_cancer(as_frame=True).frame
    data = data.rename(columns=lambda c: c.replace(" ", "_"))
    shuffled = data.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, new_batch = shuffled.iloc[:400], shuffled.iloc[400:].reset_index(drop=True)

    # 1-2. Version the training data inside a run; infer and save its schema.
    schema = lw.infer_schema(train, target="target")
    REPORTS.mkdir(exist_ok=True)
    schema.save(REPORTS / "breast_cancer.schema.yaml")
    with lw.start_run(experiment="breast-cancer", name="data-checks") as run:
        version = lw.log_dataset(train, name="breast-cancer-train", schema=schema)
        lw.log_param("train_dataset", version.uri)
    print(f"training data: {version.uri} ({version.rows} rows), logged by run {run.id}")
    print(f"schema: {len(schema.columns)} columns -> {REPORTS / 'breast_cancer.schema.yaml'}")

    # 3. A clean batch passes; a broken one is rejected with a readable report.
    clean = lw.validate(new_batch, schema)
    print(f"\nclean batch: {clean.summary().splitlines()[0]}")

    broken = new_batch.copy()
    broken = broken.rename(columns={"mean_texture": "texture_mean"})
    broken.loc[:9, "mean_radius"] = broken.loc[:9, "mean_radius"] * 25  # unit change
    broken.loc[10:30, "worst_area"] = np.nan  # an upstream join lost values
    broken.loc[31:60, "mean_smoothness"] = -1.0  # a "missing" placeholder
    broken["worst_symmetry"] = broken["worst_symmetry"].round(3).astype(str)  # now text
    report = lw.validate(broken, schema)
    report.to_html(REPORTS / "validation.html")
    print(f"\nbroken batch: {report.summary()}")
    print(f"-> {REPORTS / 'validation.html'}")
    try:
        lw.log_dataset(broken, name="breast-cancer-batch", schema=schema)
    except lw.DataValidationError as rejected:
        print(f"\nlog_dataset refused the batch ({len(rejected.report.errors)} errors)")

    # 4. Drift: a batch from another lab whose instrument reads 20% larger.
    drifted = new_batch.copy()
    for column in ("mean_radius", "mean_perimeter", "mean_area", "worst_radius"):
        drifted[column] = drifted[column] * 1.2
    drift = lw.detect_drift(train, drifted, target="target")
    drift.to_html(REPORTS / "drift.html")
    print(f"\ndrift: {drift.summary()}")
    print(f"-> {REPORTS / 'drift.html'}")


if __name__ == "__main__":
    main()
