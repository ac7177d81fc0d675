"""loopwise: the whole life of a model in production, in one package.

Track experiments (``start_run``, ``log_metric``, ``search_runs``), with every step
recorded in one store: SQLite and a local folder by default, PostgreSQL and S3 by URL.

Importing loopwise is cheap: it reads no configuration, touches no disk and imports
neither pandas nor SQLAlchemy. Names resolve on first use.

The public surface is one table, :data:`_PUBLIC` (module -> the names it provides):
``__all__`` and the lazy lookup are derived from it, and the ``TYPE_CHECKING`` imports at
the end (what type checkers and IDEs read) are checked against it by
``tests/test_public_api.py``, which prints the block to paste when they differ.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from loopwise._version import __version__
from loopwise.errors import (
    ConfigurationError,
    Conflict,
    DataValidationError,
    Forbidden,
    InvalidFilter,
    InvalidInput,
    InvalidReference,
    LoopwiseError,
    NoActiveRun,
    NotFound,
    ParamConflict,
    StoreUnavailable,
    Unauthorized,
)

#: The errors, imported eagerly (the module is tiny and every caller catches them).
_ERRORS = (
    "ConfigurationError",
    "Conflict",
    "DataValidationError",
    "Forbidden",
    "InvalidFilter",
    "InvalidInput",
    "InvalidReference",
    "LoopwiseError",
    "NoActiveRun",
    "NotFound",
    "ParamConflict",
    "StoreUnavailable",
    "Unauthorized",
)

#: Every lazily imported public name, by the module that defines or binds it.
_PUBLIC: dict[str, tuple[str, ...]] = {
    "loopwise.context": ("configure", "get_store"),
    "loopwise.data.api": ("get_dataset_version", "list_datasets", "load_dataset", "log_dataset"),
    "loopwise.data.datasets": ("DatasetVersion",),
    "loopwise.data.drift.detect": ("DriftReport", "detect_drift", "detect_skew"),
    "loopwise.data.impute": ("impute",),
    "loopwise.data.profiles": ("Profile",),
    "loopwise.data.profiling": ("profile",),
    "loopwise.data.quality.report": ("QualityReport", "data_quality"),
    "loopwise.data.schema": ("Schema",),
    "loopwise.data.schema_inference": ("infer_schema",),
    "loopwise.data.validation": ("ValidationReport", "validate"),
    "loopwise.evaluation.evaluate": ("Evaluation",),
    "loopwise.evaluation.policy": ("Policy",),
    "loopwise.monitoring.alerting.alerts": ("Alert",),
    "loopwise.monitoring.api": (
        "compare_variants",
        "list_alerts",
        "monitor_figures",
        "monitor_report",
        "monitor_results",
        "run_monitor",
        "wait_for_actions",
    ),
    "loopwise.monitoring.config": ("Monitor",),
    "loopwise.monitoring.report": ("MonitorReport",),
    "loopwise.monitoring.results": ("WindowResult",),
    "loopwise.pipelines.api": (
        "PipelineRun",
        "StepRun",
        "get_pipeline_run",
        "list_pipeline_runs",
        "list_pipelines",
        "pipeline",
        "resume_pipeline",
        "run_pipeline",
        "step",
    ),
    "loopwise.predictions.api": (
        "compact_predictions",
        "log_feedback",
        "log_predictions",
        "read_predictions",
        "trace_prediction",
    ),
    "loopwise.predictions.compaction": ("CompactionResult",),
    "loopwise.predictions.tracing": ("PredictionTrace",),
    "loopwise.registry.api": (
        "alias_history",
        "delete_alias",
        "evaluate",
        "get_model_version",
        "list_model_versions",
        "list_models",
        "load_model",
        "log_model",
        "model_lineage",
        "promote",
        "rollback",
        "set_alias",
        "update_model",
        "update_model_version",
        "version_at",
    ),
    "loopwise.registry.autolog": ("autolog",),
    "loopwise.registry.promotion": ("Decision",),
    "loopwise.registry.records": ("ModelVersion",),
    "loopwise.store": ("Store",),
    "loopwise.tracking.fluent": (
        "ActiveRun",
        "active_run",
        "download_artifacts",
        "end_run",
        "flush",
        "get_metric_history",
        "get_run",
        "list_artifacts",
        "list_experiments",
        "log_artifact",
        "log_dict",
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "log_text",
        "search_runs",
        "set_tag",
        "set_tags",
        "start_run",
    ),
    "loopwise.tracking.records": ("Experiment", "Run", "RunStatus"),
}

_LAZY = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted([*_LAZY, *_ERRORS, "__version__"])


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
    from loopwise.data.validation import ValidationReport, validate
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
    from loopwise.pipelines.api import (
        PipelineRun,
        StepRun,
        get_pipeline_run,
        list_pipeline_runs,
        list_pipelines,
        pipeline,
        resume_pipeline,
        run_pipeline,
        step,
    )
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
