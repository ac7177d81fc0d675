"""The public surface: exactly the names in ``__all__``, and a cheap import."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import loopwise
from loopwise import errors

EXPECTED = {
    "PipelineRun",
    "StepRun",
    "get_pipeline_run",
    "list_pipeline_runs",
    "list_pipelines",
    "pipeline",
    "resume_pipeline",
    "run_pipeline",
    "step",
    "compare_variants",
    "list_alerts",
    "Alert",
    "monitor_report",
    "MonitorReport",
    "wait_for_actions",
    "Monitor",
    "WindowResult",
    "run_monitor",
    "monitor_results",
    "monitor_figures",
    "read_predictions",
    "log_predictions",
    "log_feedback",
    "trace_prediction",
    "PredictionTrace",
    "compact_predictions",
    "CompactionResult",
    "update_model",
    "update_model_version",
    "autolog",
    "promote",
    "Policy",
    "Decision",
    "log_model",
    "load_model",
    "get_model_version",
    "list_models",
    "list_model_versions",
    "set_alias",
    "delete_alias",
    "alias_history",
    "version_at",
    "rollback",
    "model_lineage",
    "evaluate",
    "ModelVersion",
    "Evaluation",
    "infer_schema",
    "Schema",
    "validate",
    "ValidationReport",
    "DataValidationError",
    "impute",
    "detect_drift",
    "detect_skew",
    "DriftReport",
    "data_quality",
    "QualityReport",
    "DatasetVersion",
    "log_dataset",
    "load_dataset",
    "get_dataset_version",
    "list_datasets",
    "profile",
    "Profile",
    "ActiveRun",
    "ConfigurationError",
    "Conflict",
    "Experiment",
    "InvalidFilter",
    "InvalidInput",
    "InvalidReference",
    "LoopwiseError",
    "NoActiveRun",
    "NotFound",
    "ParamConflict",
    "Forbidden",
    "Unauthorized",
    "Run",
    "RunStatus",
    "Store",
    "StoreUnavailable",
    "__version__",
    "active_run",
    "configure",
    "download_artifacts",
    "end_run",
    "flush",
    "get_metric_history",
    "get_run",
    "get_store",
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
}


def test_all_is_exactly_the_public_names():
    assert set(loopwise.__all__) == EXPECTED
    assert loopwise.__all__ == sorted(loopwise.__all__)
    for name in loopwise.__all__:
        assert getattr(loopwise, name) is not None


def test_errors_share_one_root():
    for name in loopwise._ERRORS:
        assert issubclass(getattr(loopwise, name), loopwise.LoopwiseError)
        assert getattr(loopwise, name) is getattr(errors, name)
    from loopwise.data.validation import DataValidationError

    assert DataValidationError is errors.DataValidationError  # one class, two import paths
    assert issubclass(errors.DataValidationError, errors.InvalidInput)


def test_every_error_class_is_exported():
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.LoopwiseError)
    }
    assert defined == set(loopwise._ERRORS)


def type_checking_block() -> str:
    """The ``if TYPE_CHECKING:`` imports that the table in loopwise/__init__.py implies."""
    lines = ["if TYPE_CHECKING:"]
    for module in sorted(loopwise._PUBLIC):
        names = ", ".join(sorted(loopwise._PUBLIC[module], key=lambda n: (n[0].islower(), n)))
        lines.append(f"    from {module} import {names}")
    return "\n".join(lines)


def test_the_type_checking_imports_follow_the_table():
    """Type checkers and IDEs read the ``TYPE_CHECKING`` imports, the runtime reads the
    table: they must name the same things. (Paste the block below when this fails, then
    ``make format``.)"""
    tree = ast.parse(Path(loopwise.__file__).read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    found = {(node.module, alias.name) for node in block.body for alias in node.names}
    wanted = {(m, name) for m, names in loopwise._PUBLIC.items() for name in names}
    assert found == wanted, type_checking_block()


def test_each_public_name_comes_from_the_module_the_table_names():
    for module, names in loopwise._PUBLIC.items():
        imported = importlib.import_module(module)
        for name in names:
            assert getattr(loopwise, name) is getattr(imported, name), (module, name)


def test_import_is_cheap_and_side_effect_free(tmp_path):
    code = (
        "import sys, loopwise\n"
        "heavy = {'pandas', 'sqlalchemy', 'numpy', 'fsspec', 'alembic', 'typer'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "[]"
    assert not (tmp_path / ".loopwise").exists()


# Public functions of the monitoring facades and validation, and the page documenting them.
DOCUMENTED_IN = {
    "validate": "data.md",
    "list_alerts": "alerts.md",
    "wait_for_actions": "alerts.md",
    "run_monitor": "monitoring.md",
    "monitor_results": "monitoring.md",
    "monitor_figures": "monitoring.md",
    "monitor_report": "monitoring.md",
}


def test_every_option_of_these_public_functions_is_on_their_docs_page():
    """An option a user cannot find is an option they do not have (``expect_target`` of
    ``validate`` was used by monitoring and documented nowhere)."""
    docs = Path(__file__).resolve().parents[1] / "docs"
    missing = []
    for name, page in DOCUMENTED_IN.items():
        text = (docs / page).read_text(encoding="utf-8")
        assert f"lw.{name}(" in text, f"lw.{name} is not shown in docs/{page}"
        for param in inspect.signature(getattr(loopwise, name)).parameters.values():
            if param.default is param.empty or param.kind is param.VAR_KEYWORD:
                continue
            if not re.search(rf"\b{param.name}=|`{param.name}`", text):
                missing.append(f"lw.{name}({param.name}=) in docs/{page}")
    assert not missing, missing


# Public functions that may return ``Any``, and why: what they return is the user's own.
RETURNS_ANY = {
    "load_model": "the user's model object, of whatever class they logged",
    "load_dataset": "a pandas or Polars frame or an Arrow table, as as_= asks",
}


def test_public_functions_name_what_they_return():
    """A type a user can look up (``Decision``, ``Evaluation``, ``ABReport``), not ``Any``."""
    vague = []
    for name in loopwise.__all__:
        value = getattr(loopwise, name)
        if not inspect.isfunction(value) or name in RETURNS_ANY:
            continue
        returned = inspect.signature(value).return_annotation
        if returned is inspect.Signature.empty or "Any" in str(returned):
            vague.append(f"{name} -> {returned}")
    assert not vague, vague
    assert inspect.signature(loopwise.promote).return_annotation == "Decision"
    assert inspect.signature(loopwise.evaluate).return_annotation == "Evaluation"
    assert inspect.signature(loopwise.compare_variants).return_annotation == "ABReport"


def test_the_named_return_types_resolve():
    """The annotations name real classes (imported for type checkers only, so the import
    stays cheap)."""
    import typing

    from loopwise.evaluation.evaluate import Evaluation
    from loopwise.monitoring import ab, api
    from loopwise.registry import api as registry_api
    from loopwise.registry.promotion import Decision

    names = {"Decision": Decision, "Evaluation": Evaluation, "ABReport": ab.ABReport}
    for func in (registry_api.promote, registry_api.evaluate, api.compare_variants):
        hints = typing.get_type_hints(func, localns=names, globalns=vars(inspect.getmodule(func)))
        assert hints["return"] in names.values()
