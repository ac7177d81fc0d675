"""loopwise: the whole life of a model in production, in one package.

Track experiments (``start_run``, ``log_metric``, ``search_runs``), with every step
recorded in one store: SQLite and a local folder by default, PostgreSQL and S3 by URL.

Importing loopwise is cheap: it reads no configuration, touches no disk and imports
neither pandas nor SQLAlchemy. Names resolve on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from loopwise._version import __version__
from loopwise.errors import (
    ConfigurationError,
    Conflict,
    InvalidFilter,
    InvalidInput,
    InvalidReference,
    LoopwiseError,
    NoActiveRun,
    NotFound,
    ParamConflict,
    StoreUnavailable,
)

_LAZY = {
    "autolog": "loopwise.registry.autolog",
    "promote": "loopwise.registry.api",
    "Policy": "loopwise.evaluation.policy",
    "Decision": "loopwise.registry.promotion",
    "log_model": "loopwise.registry.api",
    "load_model": "loopwise.registry.api",
    "Monitor": "loopwise.monitoring.config",
    "WindowResult": "loopwise.monitoring.results",
    "run_monitor": "loopwise.monitoring.api",
    "list_alerts": "loopwise.monitoring.api",
    "Alert": "loopwise.monitoring.alerting.alerts",
    "monitor_report": "loopwise.monitoring.api",
    "MonitorReport": "loopwise.monitoring.report",
    "wait_for_actions": "loopwise.monitoring.api",
    "compare_variants": "loopwise.monitoring.api",
    "monitor_results": "loopwise.monitoring.api",
    "monitor_figures": "loopwise.monitoring.api",
    "read_predictions": "loopwise.predictions.api",
    "log_predictions": "loopwise.predictions.api",
    "log_feedback": "loopwise.predictions.api",
    "trace_prediction": "loopwise.predictions.api",
    "compact_predictions": "loopwise.predictions.api",
    "CompactionResult": "loopwise.predictions.compaction",
    "PredictionTrace": "loopwise.predictions.tracing",
    "get_model_version": "loopwise.registry.api",
    "list_models": "loopwise.registry.api",
    "update_model": "loopwise.registry.api",
    "update_model_version": "loopwise.registry.api",
    "list_model_versions": "loopwise.registry.api",
    "set_alias": "loopwise.registry.api",
    "delete_alias": "loopwise.registry.api",
    "alias_history": "loopwise.registry.api",
    "version_at": "loopwise.registry.api",
    "rollback": "loopwise.registry.api",
    "model_lineage": "loopwise.registry.api",
    "evaluate": "loopwise.registry.api",
    "ModelVersion": "loopwise.registry.records",
    "Evaluation": "loopwise.evaluation.evaluate",
    "infer_schema": "loopwise.data.schema_inference",
    "Schema": "loopwise.data.schema",
    "validate": "loopwise.data.validation",
    "ValidationReport": "loopwise.data.validation",
    "DataValidationError": "loopwise.data.validation",
    "impute": "loopwise.data.impute",
    "detect_drift": "loopwise.data.drift.detect",
    "detect_skew": "loopwise.data.drift.detect",
    "DriftReport": "loopwise.data.drift.detect",
    "data_quality": "loopwise.data.quality.report",
    "QualityReport": "loopwise.data.quality.report",
    "DatasetVersion": "loopwise.data.datasets",
    "log_dataset": "loopwise.data.api",
    "load_dataset": "loopwise.data.api",
    "get_dataset_version": "loopwise.data.api",
    "list_datasets": "loopwise.data.api",
    "profile": "loopwise.data.profiling",
    "Profile": "loopwise.data.profiles",
    "configure": "loopwise.context",
    "get_store": "loopwise.context",
    "Store": "loopwise.store",
    "Experiment": "loopwise.tracking.records",
    "Run": "loopwise.tracking.records",
    "RunStatus": "loopwise.tracking.records",
    "ActiveRun": "loopwise.tracking.fluent",
    "active_run": "loopwise.tracking.fluent",
    "download_artifacts": "loopwise.tracking.fluent",
    "end_run": "loopwise.tracking.fluent",
    "flush": "loopwise.tracking.fluent",
    "get_metric_history": "loopwise.tracking.fluent",
    "get_run": "loopwise.tracking.fluent",
    "list_artifacts": "loopwise.tracking.fluent",
    "list_experiments": "loopwise.tracking.fluent",
    "log_artifact": "loopwise.tracking.fluent",
    "log_dict": "loopwise.tracking.fluent",
    "log_metric": "loopwise.tracking.fluent",
    "log_metrics": "loopwise.tracking.fluent",
    "log_param": "loopwise.tracking.fluent",
    "log_params": "loopwise.tracking.fluent",
    "log_text": "loopwise.tracking.fluent",
    "search_runs": "loopwise.tracking.fluent",
    "set_tag": "loopwise.tracking.fluent",
    "set_tags": "loopwise.tracking.fluent",
    "start_run": "loopwise.tracking.fluent",
}

__all__ = [
    "ActiveRun",
    "Alert",
    "CompactionResult",
    "ConfigurationError",
    "Conflict",
    "DataValidationError",
    "DatasetVersion",
    "Decision",
    "DriftReport",
    "Evaluation",
    "Experiment",
    "InvalidFilter",
    "InvalidInput",
    "InvalidReference",
    "LoopwiseError",
    "ModelVersion",
    "Monitor",
    "MonitorReport",
    "NoActiveRun",
    "NotFound",
    "ParamConflict",
    "Policy",
    "PredictionTrace",
    "Profile",
    "QualityReport",
    "Run",
    "RunStatus",
    "Schema",
    "Store",
    "StoreUnavailable",
    "ValidationReport",
    "WindowResult",
    "__version__",
    "active_run",
    "alias_history",
    "autolog",
    "compact_predictions",
    "compare_variants",
    "configure",
    "data_quality",
    "delete_alias",
    "detect_drift",
    "detect_skew",
    "download_artifacts",
    "end_run",
    "evaluate",
    "flush",
    "get_dataset_version",
    "get_metric_history",
    "get_model_version",
    "get_run",
    "get_store",
    "impute",
    "infer_schema",
    "list_alerts",
    "list_artifacts",
    "list_datasets",
    "list_experiments",
    "list_model_versions",
    "list_models",
    "load_dataset",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_dict",
    "log_feedback",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_predictions",
    "log_text",
    "model_lineage",
    "monitor_figures",
    "monitor_report",
    "monitor_results",
    "profile",
    "promote",
    "read_predictions",
    "rollback",
    "run_monitor",
    "search_runs",
    "set_alias",
    "set_tag",
    "set_tags",
    "start_run",
    "trace_prediction",
    "update_model",
    "update_model_version",
    "validate",
    "version_at",
    "wait_for_actions",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopwise' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from loopwise.context import configure, get_store
    from loopwise.data.api import get_dataset_version, list_datasets, load_dataset, log_dataset
    from loopwise.data.datasets import DatasetVersion
    from loopwise.data.drift.detect import DriftReport, detect_drift, detect_skew
    from loopwise.data.impute import impute
    from loopwise.data.profiles import Profile
    from loopwise.data.profiling import profile
    from loopwise.data.quality.report import QualityReport, data_quality
    from loopwise.data.schema import Schema
    from loopwise.data.schema_inference import infer_schema
    from loopwise.data.validation import DataValidationError, ValidationReport, validate
    from loopwise.evaluation.evaluate import Evaluation
    from loopwise.evaluation.policy import Policy
    from loopwise.monitoring.alerting.alerts import Alert
    from loopwise.monitoring.api import (
        compare_variants,
        list_alerts,
        monitor_figures,
        monitor_report,
        monitor_results,
        run_monitor,
        wait_for_actions,
    )
    from loopwise.monitoring.config import Monitor
    from loopwise.monitoring.report import MonitorReport
    from loopwise.monitoring.results import WindowResult
    from loopwise.predictions.api import (
        compact_predictions,
        log_feedback,
        log_predictions,
        read_predictions,
        trace_prediction,
    )
    from loopwise.predictions.compaction import CompactionResult
    from loopwise.predictions.tracing import PredictionTrace
    from loopwise.registry.api import (
        alias_history,
        delete_alias,
        evaluate,
        get_model_version,
        list_model_versions,
        list_models,
        load_model,
        log_model,
        model_lineage,
        promote,
        rollback,
        set_alias,
        update_model,
        update_model_version,
        version_at,
    )
    from loopwise.registry.autolog import autolog
    from loopwise.registry.promotion import Decision
    from loopwise.registry.records import ModelVersion
    from loopwise.store import Store
    from loopwise.tracking.fluent import (
        ActiveRun,
        active_run,
        download_artifacts,
        end_run,
        flush,
        get_metric_history,
        get_run,
        list_artifacts,
        list_experiments,
        log_artifact,
        log_dict,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_runs,
        set_tag,
        set_tags,
        start_run,
    )
    from loopwise.tracking.records import Experiment, Run, RunStatus
