"""An unchanged MLflow client's model calls (MLflow 3's logged models and registry), run
in MLflow's environment against ``MLFLOW_TRACKING_URI``: log a scikit-learn model in a
run, register it twice, move an alias, load the champion with pyfunc. Prints what it saw
as one JSON line."""

import json

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
X = pd.DataFrame({"income": rng.normal(50, 15, 300), "debt": rng.normal(20, 8, 300)})
y = (X["income"] - 2 * X["debt"] + rng.normal(0, 5, 300) > 10).astype(int)
out = {}
client = MlflowClient()
mlflow.set_experiment("mlflow-models")
with mlflow.start_run(run_name="train") as run:
    mlflow.log_param("C", 1.0)
    model = LogisticRegression(C=1.0).fit(X, y)
    mlflow.log_metric("accuracy", float(model.score(X, y)))
    # MLflow 3 names the model; MLflow 2 gives the folder in the run (its log_model).
    where = {"name": "model"} if mlflow.__version__ >= "3" else {"artifact_path": "model"}
    info = mlflow.sklearn.log_model(model, input_example=X.head(3), **where)
out["run_id"] = run.info.run_id
out["model_uri"] = info.model_uri
first = mlflow.register_model(info.model_uri, "mlflow-credit")
second = mlflow.register_model(info.model_uri, "mlflow-credit")
out["versions"] = [first.version, second.version, first.status]
client.set_registered_model_alias("mlflow-credit", "champion", first.version)
held = client.get_model_version_by_alias("mlflow-credit", "champion")
out["champion"] = [held.version, held.run_id, list(held.aliases)]
registered = client.get_registered_model("mlflow-credit")
out["registered"] = [registered.name, {a: str(v) for a, v in registered.aliases.items()}]
loaded = mlflow.pyfunc.load_model("models:/mlflow-credit@champion")
out["predictions"] = [int(v) for v in loaded.predict(X.head(20))]
out["expected"] = [int(v) for v in model.predict(X.head(20))]
out["proba"] = [float(p) for p in model.predict_proba(X.head(3))[:, 1]]
client.set_registered_model_alias("mlflow-credit", "challenger", second.version)
client.delete_registered_model_alias("mlflow-credit", "challenger")
try:
    client.get_model_version_by_alias("mlflow-credit", "challenger")
except MlflowException as e:
    out["deleted_alias"] = [e.error_code, e.get_http_status_code()]
try:
    client.create_registered_model("mlflow-credit")
except MlflowException as e:
    out["duplicate_model"] = [e.error_code, e.get_http_status_code()]
try:
    client.get_model_version("mlflow-credit", "99")
except MlflowException as e:
    out["missing_version"] = [e.error_code, e.get_http_status_code()]
client.create_registered_model("mlflow-other")
out["searched_models"] = [m.name for m in client.search_registered_models()]
out["searched_like"] = [
    m.name for m in client.search_registered_models(filter_string="name LIKE 'mlflow-c%'")
]
out["searched_latest"] = [
    v.version for v in client.search_registered_models("name = 'mlflow-credit'")[0].latest_versions
]
first_page = client.search_registered_models(max_results=1)
second_page = client.search_registered_models(max_results=1, page_token=first_page.token)
out["model_pages"] = [[m.name for m in first_page], [m.name for m in second_page]]
out["searched_versions"] = sorted(
    v.version for v in client.search_model_versions("name='mlflow-credit'")
)
out["versions_of_run"] = sorted(
    v.version for v in client.search_model_versions(f"run_id = '{run.info.run_id}'")
)
out["unsupported_filter"] = None
try:
    client.search_model_versions("source_path = 'x'")
except MlflowException as e:
    out["unsupported_filter"] = [e.error_code, e.get_http_status_code()]
# descriptions and tags of registered models and versions
client.create_registered_model("mlflow-tagged", tags={"team": "risk"}, description="first")
client.set_registered_model_tag("mlflow-tagged", "tier", "1")
client.set_registered_model_tag("mlflow-credit", "team", "credit")
client.update_registered_model("mlflow-credit", description="scores loans")
client.set_model_version_tag("mlflow-credit", first.version, "validated", "yes")
client.set_model_version_tag("mlflow-credit", second.version, "validated", "no")
client.delete_model_version_tag("mlflow-credit", second.version, "validated")
client.update_model_version("mlflow-credit", first.version, description="baseline")
tagged = client.get_registered_model("mlflow-tagged")
credit = client.get_registered_model("mlflow-credit")
out["model_tags"] = [tagged.tags, tagged.description, credit.tags, credit.description]
out["model_updated"] = credit.last_updated_timestamp >= credit.creation_timestamp
held = client.get_model_version("mlflow-credit", first.version)
out["version_tags"] = [held.tags, held.description]
out["version_tags_2"] = client.get_model_version("mlflow-credit", second.version).tags
client.delete_registered_model_tag("mlflow-tagged", "tier")
out["model_tags_after"] = client.get_registered_model("mlflow-tagged").tags
out["by_model_tag"] = [m.name for m in client.search_registered_models("tags.team = 'risk'")]
out["by_version_tag"] = [
    v.version
    for v in client.search_model_versions("name = 'mlflow-credit' and tags.validated = 'yes'")
]
out["latest"] = [v.version for v in client.get_latest_versions("mlflow-credit")]
out["latest_staging"] = [
    v.version for v in client.get_latest_versions("mlflow-credit", ["Staging"])
]
out["refused"] = {}
for call, what in [
    (lambda: client.delete_registered_model_tag("mlflow-tagged", "absent"), "absent_tag"),
    (lambda: client.set_model_version_tag("mlflow-credit", "1", "mlflow.source", "x"), "reserved"),
    (lambda: client.transition_model_version_stage("mlflow-credit", "1", "Production"), "stage"),
    (lambda: client.rename_registered_model("mlflow-credit", "renamed"), "rename"),
    (lambda: client.delete_model_version("mlflow-credit", "1"), "delete_version"),
    (lambda: client.delete_registered_model("mlflow-credit"), "delete_model"),
]:
    try:
        call()
    except MlflowException as e:
        out["refused"][what] = [e.error_code, e.get_http_status_code()]
experiment_id = mlflow.get_experiment_by_name("mlflow-models").experiment_id
client.set_experiment_tag(experiment_id, "owner", "risk")
client.set_experiment_tag(experiment_id, "drop", "me")
if hasattr(client, "delete_experiment_tag"):  # MLflow 3
    client.delete_experiment_tag(experiment_id, "drop")
    out["experiment_tags"] = sorted(client.get_experiment(experiment_id).tags)
    model_id = info.model_id
    client.set_logged_model_tags(model_id, {"keep": "1", "drop": "2"})
    client.delete_logged_model_tag(model_id, "drop")
    kept = client.get_logged_model(model_id).tags  # with the client's own mlflow.* tags
    out["logged_model_tags"] = sorted(k for k in kept if not k.startswith("mlflow."))
X.head(20).to_json("rows.json", orient="records")
print(json.dumps(out))
