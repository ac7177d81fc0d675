"""Pipelines: plain-Python steps, recorded, cached, resumed.

1. A four-step training pipeline (load -> features -> train -> score) runs; every step is
   a child run of the pipeline's run, the frame a dataset version, the model a model
   version traced to that data, the scores metrics.
2. It runs again with the same parameters: every step comes from the cache.
3. A changed parameter of ``train`` re-runs ``train`` and ``score`` only.
4. A step that fails skips what depends on it; once fixed, ``resume`` re-runs from the
   failure and reuses what had succeeded.

    python examples/pipelines.py
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import loopwise as lw

FEATURES = ["age", "income", "debt_ratio", "income_per_age"]


@lw.step
def load(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows).astype(float),
            "income": rng.lognormal(0.0, 0.4, rows) * 50.0,
            "debt_ratio": rng.uniform(0, 1, rows),
        }
    )
    risk = 3.0 * frame["debt_ratio"] - frame["income"] / 50.0 + rng.normal(0, 0.3, rows)
    frame["defaulted"] = (risk > 0.5).astype(int)
    return frame


@lw.step
def features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(income_per_age=frame["income"] / frame["age"])


@lw.step(retries=1)
def train(frame: pd.DataFrame, C: float = 1.0) -> LogisticRegression:
    if os.environ.get("BREAK_TRAINING"):
        raise RuntimeError("the training cluster is down")
    return LogisticRegression(C=C, max_iter=1000).fit(frame[FEATURES], frame["defaulted"])


@lw.step
def score(model: LogisticRegression, frame: pd.DataFrame) -> dict:
    return {"accuracy": float(model.score(frame[FEATURES], frame["defaulted"]))}


@lw.pipeline(name="credit-train")
def credit(rows: int = 2000, C: float = 1.0):
    frame = features(load(rows))
    model = train(frame, C=C)
    return {"model": model, "scores": score(model, frame)}


def show(title: str, run: lw.PipelineRun) -> None:
    steps = ", ".join(f"{s.name} {'cached' if s.cached else s.status.lower()}" for s in run.steps)
    print(f"{title}: {run.status.value} in {run.duration_s:.2f}s ({steps})")


def main() -> None:
    first = lw.run_pipeline(credit, params={"rows": 2000, "C": 1.0})
    show("first run", first)
    out = first.output()
    print(f"  accuracy {out['scores']['accuracy']:.3f}")
    version = lw.get_model_version(first.step("train").outputs["ref"])
    lineage = lw.model_lineage(version.uri)
    print(
        f"  {version.uri} <- step {lineage.pipeline_step} of pipeline run "
        f"{lineage.parent_run.id} <- {', '.join(d.uri for d in lineage.datasets)}"
    )

    show("same parameters", lw.run_pipeline(credit, params={"rows": 2000, "C": 1.0}))
    show("new C", lw.run_pipeline(credit, params={"rows": 2000, "C": 0.1}))

    os.environ["BREAK_TRAINING"] = "1"
    failed = lw.run_pipeline(credit, params={"rows": 2000, "C": 0.01})
    show("training broken", failed)
    print(
        f"  train failed after {failed.step('train').attempts} attempts: "
        f"{failed.step('train').error.strip().splitlines()[-1]}"
    )
    del os.environ["BREAK_TRAINING"]
    resumed = lw.resume_pipeline(failed.id)
    show("resumed", resumed)
    print(
        f"  resumed from {resumed.resumed_from}: accuracy "
        f"{resumed.output()['scores']['accuracy']:.3f}"
    )


if __name__ == "__main__":
    main()
