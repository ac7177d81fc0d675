"""An unchanged MLflow client's tracking calls, run in MLflow's own environment
(``.venv-mlflow``) against ``MLFLOW_TRACKING_URI``: a real `loopwise server`. Prints what it
read back as one JSON line for the test to check."""

import json
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

out = {}
client = MlflowClient()
out["default_experiment"] = client.get_experiment("0").name
out["missing_experiment"] = mlflow.get_experiment_by_name("no-such-experiment") is None
experiment = mlflow.set_experiment("mlflow-compat")
out["experiment_id"] = experiment.experiment_id
out["artifact_location"] = experiment.artifact_location

with mlflow.start_run(run_name="first") as run:
    mlflow.log_param("C", 0.5)
    mlflow.log_params({"depth": 3, "kind": "rf"})
    for step in range(120):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
    mlflow.log_metric("weird", float("nan"))
    mlflow.set_tag("team", "risk")
    mlflow.set_tags({"stage": "dev"})
    with tempfile.TemporaryDirectory() as folder:
        notes = Path(folder) / "notes.txt"
        notes.write_text("hello from mlflow")
        mlflow.log_artifact(str(notes))
        (Path(folder) / "sub").mkdir()
        (Path(folder) / "sub" / "deep.txt").write_text("deep")
        mlflow.log_artifacts(folder, artifact_path="dir")
    mlflow.log_dict({"lr": 0.1}, "config.json")
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas

    loans = pd.DataFrame({"income": [1.0, 2.0, 3.0], "debt": [0.5, 0.1, 0.2]})
    dataset = from_pandas(loans, source="s3://bucket/loans.csv", name="loans")
    mlflow.log_input(dataset, context="training")
    mlflow.log_input(dataset, context="validation")  # the same dataset: its tags replaced
    mlflow.log_input(from_pandas(loans.head(2), name="holdout"), context="testing")
    out["dataset_digest"] = dataset.digest
    mlflow.log_text("some text", "texts/t.txt")
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("acc", 0.7)
    try:
        mlflow.log_param("C", 2.0)  # a param's value never changes
    except MlflowException as e:
        out["param_change"] = [e.error_code, e.get_http_status_code()]
out["run_id"] = run.info.run_id
out["child_id"] = child.info.run_id
with mlflow.start_run(run_name="second"):
    mlflow.log_metric("acc", 0.5)
    mlflow.log_param("kind", "lr")

finished = client.get_run(run.info.run_id)
out["status"] = finished.info.status
out["params"] = finished.data.params
out["metrics"] = {k: (v if v == v else "nan") for k, v in finished.data.metrics.items()}
out["tags"] = {k: v for k, v in finished.data.tags.items() if not k.startswith("mlflow.source")}
out["artifact_uri"] = finished.info.artifact_uri
out["inputs"] = sorted(
    (d.dataset.name, d.dataset.source_type, {t.key: t.value for t in d.tags})
    for d in finished.inputs.dataset_inputs
)
out["input_schema"] = json.loads(finished.inputs.dataset_inputs[0].dataset.schema)

found = mlflow.search_runs(
    experiment_names=["mlflow-compat"],
    filter_string="metrics.acc > 0.6 and params.kind = 'rf'",
    order_by=["metrics.acc DESC"],
    output_format="list",
)
out["filtered"] = [r.info.run_name for r in found]
out["by_acc"] = [
    r.info.run_name
    for r in mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        order_by=["metrics.acc ASC"],
        output_format="list",
    )
]
out["named"] = [
    r.info.run_name
    for r in client.search_runs(
        [experiment.experiment_id], filter_string="tags.`mlflow.runName` = 'second'"
    )
]
pages, token = [], None
while True:
    page = client.search_runs(
        [experiment.experiment_id],
        max_results=1,
        page_token=token,
        order_by=["attributes.start_time ASC"],
    )
    pages.append([r.info.run_name for r in page])
    token = page.token
    if not token:
        break
out["pages"] = pages
frame = mlflow.search_runs(experiment_names=["mlflow-compat"])
out["frame_columns"] = sorted(c for c in frame.columns if c.startswith(("metrics.", "params.")))

history = client.get_metric_history(run.info.run_id, "loss")
out["history"] = [len(history), history[0].step, history[-1].step, history[-1].value]
out["artifacts"] = sorted(a.path for a in client.list_artifacts(run.info.run_id))
out["dir"] = sorted((a.path, a.is_dir) for a in client.list_artifacts(run.info.run_id, "dir"))
with tempfile.TemporaryDirectory() as folder:
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="notes.txt", dst_path=folder
    )
    out["downloaded"] = Path(local).read_text()
    whole = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=folder)
    out["downloaded_tree"] = sorted(
        str(p.relative_to(whole)) for p in Path(whole).rglob("*") if p.is_file()
    )
try:
    client.get_run("0" * 26)
except MlflowException as e:
    out["missing_run"] = [e.error_code, e.get_http_status_code()]
try:
    client.search_runs([experiment.experiment_id], filter_string="metrics.acc >>> 1")
except MlflowException as e:
    out["bad_filter"] = [e.error_code, e.get_http_status_code()]
try:
    client.create_experiment("mlflow-compat")
except MlflowException as e:
    out["duplicate_experiment"] = [e.error_code, e.get_http_status_code()]
print(json.dumps(out))
