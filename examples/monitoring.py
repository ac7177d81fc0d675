"""Monitoring: two days of traffic in which a feature drifts and, later, the concept changes.

1. A credit-risk model is trained in a run on a logged dataset (its training data, which
   the monitor finds through lineage and uses as the reference) and registered.
2. Two days of traffic are replayed into the prediction log with their ground truth:
   stable until hour 24, then the applicants get older (a new marketing channel: data
   drift, which this model shrugs off), and from hour 36 the relation between debt and
   default flips (a concept change: the model is now wrong where it was right).
3. The monitor runs over every 6-hour window: the drift alert fires in the window of hour
   24, not before; the accuracy alert fires once labels show the drop (hour 36), and its
   action retrains the model on recent labelled traffic and registers it as
   ``challenger``.
4. The alerts, the retrain's result and the per-window figures are printed, and the
   report (plots over time, with the alerts) is written to ``reports/monitoring.html``.

Run it with ``make demo`` or ``python examples/monitoring.py``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import loopwise as lw

ENDPOINT = "credit-risk-monitored"
FEATURES = ["age", "income", "debt_ratio"]
HOURS = 48
DRIFT_AT, CONCEPT_AT = 24, 36


def applicants(n: int, rng: np.random.Generator, *, flipped: bool = False) -> pd.DataFrame:
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.lognormal(0.0, 0.4, n) * 50.0,  # in thousands
            "debt_ratio": rng.uniform(0, 1, n),
        }
    )
    debt = 1 - X["debt_ratio"] if flipped else X["debt_ratio"]
    risk = 3.0 * debt - X["income"] / 50.0 + rng.normal(0, 0.3, n)
    X["defaulted"] = (risk > 0.5).astype(int)
    return X


def train(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression(max_iter=1000).fit(frame[FEATURES], frame["defaulted"])


def retrain(alert_id: str) -> None:
    """The alert's action: retrain on the labelled traffic of the last 8 hours."""
    recent = lw.read_predictions(ENDPOINT).dropna(subset=["label"])
    recent = recent[recent["timestamp"] >= recent["timestamp"].max() - pd.Timedelta(hours=8)]
    frame = recent.rename(columns={f"input.{f}": f for f in FEATURES})
    frame["defaulted"] = frame["label"].astype(int)
    with lw.start_run(experiment="monitoring-demo", name="retrain-after-alert"):
        lw.set_tag("alert", alert_id)
        model = train(frame)
        lw.log_metric("train_accuracy", float(model.score(frame[FEATURES], frame["defaulted"])))
        version = lw.log_model(model, ENDPOINT, input_example=frame[FEATURES][:5])
    lw.set_alias(ENDPOINT, "challenger", version.version, reason=f"retrained after {alert_id}")
    print(f"retrained on {len(frame)} labelled rows: {version.uri} is now @challenger")


def replay(version: lw.ModelVersion, start: datetime) -> None:
    model = lw.load_model(version.uri)
    rng = np.random.default_rng(7)
    for hour in range(HOURS):
        batch = applicants(400, rng, flipped=hour >= CONCEPT_AT)
        if hour >= DRIFT_AT:
            batch["age"] = np.minimum(batch["age"] + 15.0, 95.0)  # older applicants
        at = start + timedelta(hours=hour)
        seconds = np.sort(rng.uniform(0, 3600, len(batch)))
        frame = batch[FEATURES].assign(
            request_id=[f"h{hour:02d}-{i:03d}" for i in range(len(batch))],
            timestamp=pd.to_datetime([at + timedelta(seconds=float(s)) for s in seconds]),
            prediction=model.predict(batch[FEATURES]),
            latency_ms=rng.gamma(2.0, 2.0, len(batch)),
        )
        lw.log_predictions(ENDPOINT, frame, model=version)
        lw.log_feedback(
            ENDPOINT, pd.DataFrame({"request_id": frame["request_id"], "label": batch["defaulted"]})
        )


def main() -> None:
    rng = np.random.default_rng(1)
    training = applicants(5000, rng)
    with lw.start_run(experiment="monitoring-demo", name="credit-risk-v1"):
        lw.log_dataset(training, name="credit-risk-training")
        version = lw.log_model(train(training), ENDPOINT, input_example=training[FEATURES][:5])
    lw.set_alias(ENDPOINT, "champion", version.version)

    now = datetime.now(UTC)
    start = now.replace(hour=now.hour // 6 * 6, minute=0, second=0, microsecond=0)
    start -= timedelta(hours=HOURS)  # on a 6-hour boundary, as the windows are
    replay(version, start)
    print(f"replayed {HOURS} hours of traffic for {version.uri}, from {start:%Y-%m-%d %H:00} UTC")

    monitor = lw.Monitor(
        ENDPOINT,
        window="6h",
        target="defaulted",
        checks={"schema": False, "performance": ["accuracy", "f1"]},
        alerts=[
            {"name": "age-drift", "metric": "drifted.age", "above": 0.5},
            {
                "name": "accuracy-drop",
                "metric": "perf.accuracy",
                "below_baseline": 0.1,
                "action": {"command": [sys.executable, __file__, "--retrain", "{alert_id}"]},
            },
        ],
    )
    results = lw.run_monitor(monitor, start, start + timedelta(hours=HOURS))
    lw.wait_for_actions(timeout=300)  # the retraining the accuracy alert started

    figures = pd.DataFrame(
        {
            "hour": [round((r.start - start).total_seconds() / 3600) for r in results],
            "age drift": [r.value("drift.age") for r in results],
            "income drift": [r.value("drift.income") for r in results],
            "accuracy": [r.value("perf.accuracy") for r in results],
        }
    )
    print("figures per 6-hour window:")
    print(figures.round(3).to_string(index=False))

    def hour_of(alert: lw.Alert) -> int:
        return round((alert.window_start - start).total_seconds() / 3600)

    alerts = lw.list_alerts(endpoint=ENDPOINT)  # [lw.Alert], oldest first
    print("alerts:")
    for alert in alerts:
        print(f"  [{alert.state}] {alert.rule} from hour {hour_of(alert)}: {alert.message}")
    fired = {alert.rule: alert for alert in alerts}
    if len(alerts) != 2 or fired.keys() != {"age-drift", "accuracy-drop"}:
        rules = [alert.rule for alert in alerts]
        raise SystemExit(f"expected one drift and one accuracy alert, got {rules}")
    for rule, expected in (("age-drift", DRIFT_AT), ("accuracy-drop", CONCEPT_AT)):
        if hour_of(fired[rule]) != expected:
            hour = hour_of(fired[rule])
            raise SystemExit(f"the {rule} alert fired at hour {hour}, expected {expected}")
    print(f"retrain action: {json.dumps(fired['accuracy-drop'].action)}")
    challenger = lw.get_model_version(f"models:/{ENDPOINT}@challenger")
    print(f"{challenger.uri} holds @challenger; @champion is still version {version.version}")

    report = lw.monitor_report(monitor)
    path = report.to_html("reports/monitoring.html")
    print(f"report: {path} (drift per feature, predictions, live accuracy, alerts)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--retrain"]:
        retrain(sys.argv[2])
    else:
        main()
