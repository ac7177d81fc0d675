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
    client.search_model_versions("tags.stage = 'x'")
except MlflowException as e:
    out["unsupported_filter"] = [e.error_code, e.get_http_status_code()]
X.head(20).to_json("rows.json", orient="records")
print(json.dumps(out))
