"""Continuous training: the loop closes with no manual step.

1. The built-in continuous-training pipeline trains the first model from a dataset with
   its schema (ingest -> validate -> split -> train -> evaluate -> promote), and it takes
   ``@champion``.
2. Three days of traffic are served hour by hour by whichever version holds
   ``@champion`` at that hour (as an endpoint serving ``models:/credit-ct@champion``
   does), with ground truth arriving as feedback. From hour 24 the relation between debt
   and default flips: a concept change.
3. The monitor runs at the end of every 6-hour window. Its accuracy rule fires once the
   labels show the drop, and its action is the pipeline itself, on the endpoint's
   labelled traffic of the last window. The new version passes the promotion policy
   (it beats the champion on the same held-out rows), ``@champion`` moves, the next
   hours are served by it, and the next windows recover.

    python examples/continuous_training.py
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

import loopwise as lw

ENDPOINT = "credit-ct"
FEATURES = ["age", "income", "debt_ratio"]
HOURS = 72
CONCEPT_AT = 24
CT = "loopwise.pipelines.ct:continuous_training"
POLICY = {"thresholds": {"accuracy": 0.7}, "vs_current": {"metric": "accuracy", "max_drop": 0.0}}
PARAMS = {
    "target": "defaulted",
    "model": ENDPOINT,
    "features": FEATURES,
    "schema": "datasets:/credit-ct-training",
    "policy": POLICY,
}


def applicants(n: int, rng: np.random.Generator, *, flipped: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.lognormal(0.0, 0.4, n) * 50.0,
            "debt_ratio": rng.uniform(0, 1, n),
        }
    )
    debt = 1 - frame["debt_ratio"] if flipped else frame["debt_ratio"]
    risk = 3.0 * debt - frame["income"] / 50.0 + rng.normal(0, 0.3, n)
    frame["defaulted"] = (risk > 0.5).astype(int)
    return frame


def serve_hour(hour: int, at: datetime, rng: np.random.Generator) -> int:
    """One hour of traffic answered by the version holding @champion now; its labels."""
    champion = lw.get_model_version(f"models:/{ENDPOINT}@champion")
    model = lw.load_model(champion.uri)
    batch = applicants(300, rng, flipped=hour >= CONCEPT_AT)
    seconds = np.sort(rng.uniform(0, 3600, len(batch)))
    frame = batch[FEATURES].assign(
        request_id=[f"h{hour:02d}-{i:03d}" for i in range(len(batch))],
        timestamp=pd.to_datetime([at + timedelta(seconds=float(s)) for s in seconds]),
        prediction=model.predict(batch[FEATURES]),
    )
    lw.log_predictions(ENDPOINT, frame, model=champion)
    labels = pd.DataFrame({"request_id": frame["request_id"], "label": batch["defaulted"]})
    lw.log_feedback(ENDPOINT, labels)
    return champion.version


def main() -> None:
    rng = np.random.default_rng(1)
    training = applicants(3000, rng)
    schema = lw.infer_schema(training, target="defaulted")
    data = lw.log_dataset(training, name="credit-ct-training", schema=schema)
    first = lw.run_pipeline(CT, params={**PARAMS, "source": data.uri})
    print(f"first training: {first.status.value}, {first.output()['promotion']['summary']}")

    monitor = lw.Monitor(
        ENDPOINT,
        window="6h",
        target="defaulted",
        checks={"schema": False, "feature_drift": False, "performance": ["accuracy"]},
        alerts=[
            {
                "name": "accuracy-drop",
                "metric": "perf.accuracy",
                "below": 0.8,
                "action": {
                    "pipeline": CT,
                    "params": {**PARAMS, "source": f"endpoints:/{ENDPOINT}", "window": "6h"},
                    "timeout": 600,
                },
            }
        ],
    )
    now = datetime.now(UTC)
    start = now.replace(hour=now.hour // 6 * 6, minute=0, second=0, microsecond=0)
    start -= timedelta(hours=HOURS)  # on a 6-hour boundary, as the windows are
    served_by: dict[int, int] = {}
    for hour in range(HOURS):
        at = start + timedelta(hours=hour)
        served_by[hour] = serve_hour(hour, at, rng)
        if (hour + 1) % 6 == 0:  # a window ends: the monitor runs, its actions finish
            lw.run_monitor(monitor, at - timedelta(hours=5), at + timedelta(hours=1))
            lw.wait_for_actions(timeout=600)

    results = lw.monitor_results(monitor)
    print("window  accuracy  served by version")
    for r in results:
        hour = round((r.start - start).total_seconds() / 3600)
        print(f"  h{hour:02d}    {r.value('perf.accuracy'):.3f}     {served_by[hour]}")
    alerts = lw.list_alerts(endpoint=ENDPOINT)
    for alert in alerts:
        hour = round((alert.window_start - start).total_seconds() / 3600)
        action = alert.action or {}
        print(
            f"alert {alert.rule} from hour {hour}: action {action.get('kind')} "
            f"{action.get('status')}, pipeline run {action.get('run_id')}"
        )
    retrain = lw.get_pipeline_run(alerts[0].action["run_id"])
    print(f"retraining run: {retrain.status.value}, trigger {retrain.trigger}")
    print(f"  {retrain.output()['promotion']['summary']}")
    champion = lw.get_model_version(f"models:/{ENDPOINT}@champion")
    lineage = lw.model_lineage(champion.uri)
    print(
        f"{champion.uri} holds @champion: trained by step {lineage.pipeline_step} of "
        f"pipeline run {lineage.parent_run.id}"
    )
    accuracy = [r.value("perf.accuracy") for r in results]
    if champion.version < 2 or accuracy[-1] < 0.8 or min(accuracy) >= 0.8:
        raise SystemExit(f"the loop did not close: accuracy per window {accuracy}")
    print(f"loop closed: accuracy fell to {min(accuracy):.3f} and recovered to {accuracy[-1]:.3f}")


if __name__ == "__main__":
    main()
