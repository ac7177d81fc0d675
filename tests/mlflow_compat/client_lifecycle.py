"""An unchanged MLflow client deletes, restores and renames runs and experiments and tags
experiments, in MLflow's environment against ``MLFLOW_TRACKING_URI``; prints what it saw
as one JSON line."""

import json

import mlflow
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException


def refusal(call):
    try:
        call()
    except MlflowException as e:
        return [e.error_code, e.get_http_status_code()]
    return None


out = {}
client = MlflowClient()
experiment = mlflow.set_experiment("mlflow-lifecycle")
eid = experiment.experiment_id
with mlflow.start_run(run_name="kept") as kept:
    mlflow.log_metric("acc", 0.9)
with mlflow.start_run(run_name="doomed") as doomed:
    mlflow.log_metric("acc", 0.5)
    mlflow.log_param("kind", "lr")
kept_id, doomed_id = kept.info.run_id, doomed.info.run_id
out["kept_id"], out["doomed_id"] = kept_id, doomed_id


def names(**kwargs):
    return sorted(r.info.run_name for r in client.search_runs([eid], **kwargs))


# -- delete and restore a run
mlflow.delete_run(doomed_id)
out["deleted_stage"] = client.get_run(doomed_id).info.lifecycle_stage
out["active"] = names()
out["deleted_only"] = names(run_view_type=ViewType.DELETED_ONLY)
out["all"] = names(run_view_type=ViewType.ALL)
out["by_metric"] = names(order_by=["metrics.acc DESC"])  # the metric walk's fast path
out["stage_filter"] = names(
    filter_string="attributes.lifecycle_stage = 'deleted'", run_view_type=ViewType.ALL
)
out["frame"] = sorted(mlflow.search_runs(experiment_ids=[eid])["tags.mlflow.runName"])
out["write_deleted"] = refusal(lambda: client.log_param(doomed_id, "other", "1"))
out["metric_deleted"] = refusal(lambda: client.log_metric(doomed_id, "acc", 0.1))
out["tag_deleted"] = refusal(lambda: client.set_tag(doomed_id, "t", "v"))
mlflow.delete_run(doomed_id)  # again: no change, no error
out["restored_before"] = client.get_run(doomed_id).info.lifecycle_stage
client.restore_run(doomed_id)  # (MLflow 2 has no mlflow.restore_run)
out["restored_stage"] = client.get_run(doomed_id).info.lifecycle_stage
out["restored_active"] = names()
mlflow.delete_run(doomed_id)  # left deleted: the test reads it back through loopwise

# -- rename a run: update_run(name=...), set_tag("mlflow.runName"), in a run's block
client.update_run(kept_id, name="kept-renamed")
out["renamed"] = client.get_run(kept_id).info.run_name
client.set_tag(kept_id, "mlflow.runName", "kept-tagged")
got = client.get_run(kept_id)
out["tag_renamed"] = [got.info.run_name, got.data.tags["mlflow.runName"]]
with mlflow.start_run(run_id=kept_id):
    mlflow.set_tag("mlflow.runName", "kept-final")
    mlflow.set_tags({"mlflow.runName": "kept-final", "team": "risk"})
out["final_name"] = client.get_run(kept_id).info.run_name
out["named_search"] = names(filter_string="tags.`mlflow.runName` = 'kept-final'")
out["long_name"] = refusal(lambda: client.update_run(kept_id, name="x" * 10_000))
out["missing_rename"] = refusal(lambda: client.update_run("0" * 26, name="x"))
out["missing_delete"] = refusal(lambda: client.delete_run("7" * 26))

# -- experiment tags, rename, delete and restore
other_id = client.create_experiment("mlflow-lifecycle-tagged", tags={"team": "risk"})
client.set_experiment_tag(other_id, "stage", "dev")
client.set_experiment_tag(other_id, "stage", "prod")
out["experiment_tags"] = client.get_experiment(other_id).tags
out["by_name_tags"] = mlflow.get_experiment_by_name("mlflow-lifecycle-tagged").tags
client.rename_experiment(other_id, "mlflow-lifecycle-renamed")
out["renamed_experiment"] = client.get_experiment(other_id).name
out["rename_taken"] = refusal(lambda: client.rename_experiment(other_id, "mlflow-lifecycle"))
client.delete_experiment(other_id)
out["experiment_stage"] = client.get_experiment(other_id).lifecycle_stage
out["listed"] = sorted(e.name for e in client.search_experiments())
out["deleted_listed"] = sorted(
    e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)
)
out["all_listed"] = len(client.search_experiments(view_type=ViewType.ALL))
try:
    mlflow.set_experiment("mlflow-lifecycle-renamed")
    out["set_deleted"] = None
except MlflowException as e:
    out["set_deleted"] = "deleted" in str(e).lower()
out["run_in_deleted"] = refusal(lambda: client.create_run(other_id))
out["default_delete"] = refusal(lambda: client.delete_experiment("0"))
out["missing_experiment_delete"] = refusal(lambda: client.delete_experiment("9" * 40))
client.restore_experiment(other_id)
out["restored_experiment"] = client.get_experiment(other_id).lifecycle_stage
client.delete_experiment(other_id)  # left deleted: the test reads it back through loopwise
out["other_id"] = other_id
print(json.dumps(out))
