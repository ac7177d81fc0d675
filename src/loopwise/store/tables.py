"""SQLAlchemy Core tables of the metadata store.

Times are integers: microseconds since the epoch, UTC. Ids are the 26-character
time-sortable strings of :mod:`loopwise.ids`.

Metric points are stored in *chunks*: one row holds a block of consecutive points of one
series (run, key) as packed little-endian arrays of steps (int64), timestamps (int64)
and values (float64). A flush of a million points is then a handful of inserts instead of
a million, a 100,000-step history is read in a few rows, and NaN and ±inf survive
exactly on every database. ``metric_series`` keeps the latest point of each series so
that searching and sorting runs by a metric is plain SQL.

API tokens keep only the SHA-256 of their secret (``secret_sha256``) and a short, non-secret
``prefix`` that identifies them in listings; a name is unique among tokens not revoked.

The tables are the current schema; the migrations under ``migrations/versions`` create
and change them, and a test checks the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

ID = String(26)
KEY = String(250)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", KEY, nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=True),  # soft delete (0016): out of listings
)

# An experiment's key/value tags (MLflow's experiment tags; 0016).
experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", ID, ForeignKey("experiments.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id"), nullable=False),
    Column("name", KEY, nullable=False),
    Column("status", String(16), nullable=False),
    Column("parent_run_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("heartbeat_at", BigInteger, nullable=True),
    Column("host", String(255), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("username", String(255), nullable=True),
    Column("environment", Text, nullable=True),
    Column("deleted_at", BigInteger, nullable=True),  # soft delete (0016): out of searches
    Index(None, "experiment_id", "start_time"),
    Index(None, "status"),
    Index(None, "parent_run_id"),
    Index(None, "name"),  # runs are looked up by name too (0010)
)

run_params = Table(
    "run_params",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index(None, "key", "value"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index(None, "key", "value"),
)

metric_series = Table(
    "metric_series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=False),
    Column("key", KEY, nullable=False),
    Column("last_step", BigInteger, nullable=True),
    Column("last_timestamp", BigInteger, nullable=True),
    Column("last_value", Float, nullable=True),
    Column("count", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("run_id", "key"),
    Index(None, "key", "last_value"),
)

metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("series_id", Integer, ForeignKey("metric_series.id"), nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("timestamps", LargeBinary, nullable=False),
    Column("point_values", LargeBinary, nullable=False),
    Index(None, "series_id", "id"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("entity_type", String(32), primary_key=True),
    Column("entity_id", ID, primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "sha256"),
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("src_type", String(32), nullable=False),
    Column("src_id", String(255), nullable=False),
    Column("relation", String(64), nullable=False),
    Column("dst_type", String(32), nullable=False),
    Column("dst_id", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("properties", Text, nullable=True),
    UniqueConstraint("src_type", "src_id", "relation", "dst_type", "dst_id"),
    Index(None, "dst_type", "dst_id"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", KEY, nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("dataset_id", ID, ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("columns", Integer, nullable=False),
    Column("format", String(16), nullable=False),
    Column("source", Text, nullable=True),
    Column("column_types", Text, nullable=False),
    Column("profile", Text, nullable=True),
    Column("schema", Text, nullable=True),
    Column("validation", Text, nullable=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "version"),
    UniqueConstraint("dataset_id", "sha256"),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", KEY, nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("tags", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=True),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model_id", ID, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("flavor", String(32), nullable=False),
    Column("manifest", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("description", Text, nullable=True),
    Column("tags", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("updated_at", BigInteger, nullable=True),
    UniqueConstraint("model_id", "version"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", ID, ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", KEY, primary_key=True),
    Column("version_id", ID, ForeignKey("model_versions.id"), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

alias_events = Table(
    "alias_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", ID, ForeignKey("registered_models.id"), nullable=False),
    Column("alias", KEY, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("moved_at", BigInteger, nullable=False),
    Column("moved_by", String(255), nullable=True),
    Column("reason", Text, nullable=True),
    Index(None, "model_id", "alias", "moved_at"),
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model_version_id", ID, ForeignKey("model_versions.id"), nullable=True),
    Column("dataset_version_id", ID, ForeignKey("dataset_versions.id"), nullable=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("task", String(16), nullable=False),
    Column("result", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "model_version_id"),
)

promotion_decisions = Table(
    "promotion_decisions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model_id", ID, ForeignKey("registered_models.id"), nullable=False),
    Column("alias", KEY, nullable=False),
    Column("candidate_version", Integer, nullable=False),
    Column("current_version", Integer, nullable=True),
    Column("passed", Boolean, nullable=False),
    Column("checks", Text, nullable=False),
    Column("policy", Text, nullable=False),
    Column("decided_at", BigInteger, nullable=False),
    Column("decided_by", String(255), nullable=True),
    Index(None, "model_id", "decided_at"),
)

_NOT_REVOKED = text("revoked_at IS NULL")

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Column("revoked_by", String(255), nullable=True),
    Column("last_used_at", BigInteger, nullable=True),
    # JSON lists of fnmatch patterns; both NULL for a token that is not scoped.
    Column("experiment_scope", Text, nullable=True),
    Column("model_scope", Text, nullable=True),
    Index(None, "name", unique=True, sqlite_where=_NOT_REVOKED, postgresql_where=_NOT_REVOKED),
)

endpoint_flag_events = Table(
    "endpoint_flag_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint", String(63), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("reason", Text, nullable=True),
    Column("set_at", BigInteger, nullable=False),
    Column("set_by", String(255), nullable=True),
    Index(None, "endpoint", "id"),
)

# -- monitoring -------------------------------------------------------------------------------
# One row per evaluated window (and model version live in it), its figures as long rows
# (slice "" is the whole window; "region=north" a slice), and alerts with their state.

monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("id", ID, primary_key=True),
    Column("monitor", String(63), nullable=False),
    Column("endpoint", String(63), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("model", String(300), nullable=False),  # "name/version", "" when unknown
    Column("model_version_id", ID, nullable=True),
    Column("rows", Integer, nullable=False),
    Column("labelled", Integer, nullable=False),
    Column("computed_at", BigInteger, nullable=False),
    Column("problems", Text, nullable=True),  # JSON: what kept figures from being computed
    UniqueConstraint("monitor", "window_start", "model"),
    Index(None, "monitor", "window_end"),
)

monitor_values = Table(
    "monitor_values",
    metadata,
    Column("window_id", ID, ForeignKey("monitor_windows.id", ondelete="CASCADE"), nullable=False),
    Column("slice", String(300), nullable=False),
    Column("metric", String(300), nullable=False),
    Column("value", Float, nullable=True),
    PrimaryKeyConstraint("window_id", "slice", "metric"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("monitor", String(63), nullable=False),
    Column("endpoint", String(63), nullable=False),
    Column("rule", String(128), nullable=False),
    Column("slice", String(300), nullable=False),
    Column("state", String(16), nullable=False),  # firing, resolved
    Column("severity", String(16), nullable=False),
    Column("metric", String(300), nullable=False),
    Column("value", Float, nullable=True),  # the latest window's figure while firing
    Column("threshold", Float, nullable=True),
    Column("message", Text, nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("model", String(300), nullable=False),
    Column("fired_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("deliveries", Text, nullable=True),  # JSON: webhook and log delivery results
    Column("action", Text, nullable=True),  # JSON: the triggered action and its result
    Column("fired_value", Float, nullable=True),  # the figure that fired it (None before 0009)
    Index(None, "monitor", "rule", "slice", "state"),
    Index(None, "endpoint", "fired_at"),
)

# -- leases -----------------------------------------------------------------------------------
# A named claim on work only one process may do at a time, with the holder's expiry (epoch
# microseconds): taken where it is free or expired, released when the work is done.

leases = Table(
    "leases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# -- audit ------------------------------------------------------------------------------------
# One row per write through the server (POST/PUT/PATCH/DELETE under /api/v1), refused ones
# too: who (the token's name, "anonymous" without one), what (method, path, status, the
# entity it touched) and when (epoch microseconds). Listed newest first, by (at, id).

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("token_id", ID, nullable=True),
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("entity", String(512), nullable=True),
    Index(None, "at", "id"),
    Index(None, "actor", "at"),
)

# -- MLflow's logged models ---------------------------------------------------------------------
# What an MLflow 3 client's log_model makes through loopwise server (see
# loopwise.server.mlflow.models): the model's name, experiment, source run, status, params and
# tags (JSON lists of {key, value}); its files are rows of ``artifacts`` (entity
# "mlflow_model"). ``id`` has MLflow's shape ("m-" and 24 hex digits).

mlflow_logged_models = Table(
    "mlflow_logged_models",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id"), nullable=False),
    Column("name", KEY, nullable=False),
    Column("source_run_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("status", String(32), nullable=False),
    Column("model_type", KEY, nullable=True),
    Column("params", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index(None, "experiment_id", "name"),
)

# -- pipelines --------------------------------------------------------------------------------
# A pipeline is known by name with the entrypoint (``module:function`` or
# ``/path/file.py:function``) a later process loads it from (the scheduler, the CLI). A
# pipeline run is a tracking run (``run_id``) with its parameters as JSON, the structure of
# its return value (``output``: node keys in place of values) and the entrypoint it ran
# from (``resume`` loads that one, even after the pipeline ran from elsewhere). Each step of
# a run is a row of ``pipeline_steps`` keyed by (pipeline run, node key); a step that ran or
# was taken from the cache has a child tracking run (``run_id``), a skipped one none.
# ``cache_key`` is the SHA-256 of the step's code, parameters and inputs' content;
# ``output_kind`` and ``output_ref`` say where its output is stored (inline JSON, a dataset
# version, a model version, a run artifact) and ``fingerprint`` is the output's content
# hash, which feeds the cache keys of the steps downstream.

# What an MLflow client logged as a run's inputs (``runs/log-inputs``; 0018): a dataset's
# metadata or a logged model's id, with the input's tags, as MLflow's JSON.
mlflow_run_inputs = Table(
    "mlflow_run_inputs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # "dataset" or "model"
    Column("input_key", String(600), nullable=False),  # name + NUL + digest, or model id
    Column("body", Text, nullable=False),  # MLflow's Dataset (or {"model_id"}) as JSON
    Column("tags", Text, nullable=False),  # the input's tags, MLflow's JSON list
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("run_id", "kind", "input_key"),
)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", KEY, nullable=False, unique=True),
    Column("entrypoint", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("pipeline_id", ID, ForeignKey("pipelines.id"), nullable=False),
    Column("entrypoint", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("output", Text, nullable=True),
    Column("executor", String(32), nullable=False),
    Column("trigger", String(512), nullable=True),
    Column("resumed_from", ID, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "pipeline_id", "created_at"),
)

pipeline_steps = Table(
    "pipeline_steps",
    metadata,
    Column("pipeline_run_id", ID, ForeignKey("runs.id"), nullable=False),
    Column("key", KEY, nullable=False),
    Column("step", KEY, nullable=False),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("status", String(16), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("cache_key", String(64), nullable=True),
    Column("cached_from", ID, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("output_kind", String(32), nullable=True),
    Column("output_ref", Text, nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    PrimaryKeyConstraint("pipeline_run_id", "key"),
    Index(None, "cache_key", "status"),
    Index(None, "run_id"),
)

# -- pipeline schedules -----------------------------------------------------------------------
# A schedule starts runs of a pipeline (by name) on a cron expression (``kind`` "cron",
# ``spec`` the expression, read in ``timezone``) or on each new version of a dataset
# (``kind`` "new_data", ``spec`` the dataset's name, the version's reference passed as the
# parameter ``input_param``). ``last_tick`` is how far the schedule has been handled: the
# latest cron time (µs, UTC) claimed or recorded missed, or the latest dataset version
# number seen. Each tick a scheduler handles is a row of ``pipeline_ticks`` keyed by
# (schedule, tick key): the cron time in µs or the version number. Inserting that row is
# the claim, so of two schedulers one wins and only it starts the run; ``state`` then says
# what became of it (running, succeeded, failed, error, interrupted, or missed: skipped
# after a downtime) and ``run_id`` which pipeline run it started.

pipeline_schedules = Table(
    "pipeline_schedules",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pipeline", KEY, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("spec", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("input_param", KEY, nullable=True),
    Column("timezone", String(64), nullable=False),
    Column("executor", String(32), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("last_tick", BigInteger, nullable=True),
    Index(None, "pipeline"),
)

pipeline_ticks = Table(
    "pipeline_ticks",
    metadata,
    Column("schedule_id", ID, ForeignKey("pipeline_schedules.id"), nullable=False),
    Column("tick_key", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("trigger", String(512), nullable=False),
    Column("run_id", ID, nullable=True),
    Column("claimed_by", String(128), nullable=True),
    Column("claimed_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    PrimaryKeyConstraint("schedule_id", "tick_key"),
)
