"""Initial schema: experiments, runs, params, tags, metrics, artifacts, lineage.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(26)
KEY = sa.String(250)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", KEY, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
    )
    op.create_table(
        "runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("name", KEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parent_run_id", ID, nullable=True),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=True),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(255), nullable=True),
        sa.Column("environment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_runs_experiment_id_experiments"
        ),
        sa.ForeignKeyConstraint(["parent_run_id"], ["runs.id"], name="fk_runs_parent_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_experiment_id_start_time", "runs", ["experiment_id", "start_time"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])
    for name in ("run_params", "run_tags"):
        op.create_table(
            name,
            sa.Column("run_id", ID, nullable=False),
            sa.Column("key", KEY, nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=f"fk_{name}_run_id_runs"),
            sa.PrimaryKeyConstraint("run_id", "key", name=f"pk_{name}"),
        )
        op.create_index(f"ix_{name}_key_value", name, ["key", "value"])
    op.create_table(
        "metric_series",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("last_timestamp", sa.BigInteger(), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("count", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_metric_series_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_metric_series"),
        sa.UniqueConstraint("run_id", "key", name="uq_metric_series_run_id_key"),
    )
    op.create_index("ix_metric_series_key_last_value", "metric_series", ["key", "last_value"])
    op.create_table(
        "metric_chunks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=False),
        sa.Column("timestamps", sa.LargeBinary(), nullable=False),
        sa.Column("point_values", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"], ["metric_series.id"], name="fk_metric_chunks_series_id_metric_series"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_metric_chunks"),
    )
    op.create_index("ix_metric_chunks_series_id_id", "metric_chunks", ["series_id", "id"])
    op.create_table(
        "artifacts",
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", ID, nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entity_type", "entity_id", "path", name="pk_artifacts"),
    )
    op.create_index("ix_artifacts_sha256", "artifacts", ["sha256"])
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("src_type", sa.String(32), nullable=False),
        sa.Column("src_id", sa.String(255), nullable=False),
        sa.Column("relation", sa.String(64), nullable=False),
        sa.Column("dst_type", sa.String(32), nullable=False),
        sa.Column("dst_id", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_edges"),
        sa.UniqueConstraint(
            "src_type",
            "src_id",
            "relation",
            "dst_type",
            "dst_id",
            name="uq_lineage_edges_src_type_src_id_relation_dst_type_dst_id",
        ),
    )
    op.create_index("ix_lineage_edges_dst_type_dst_id", "lineage_edges", ["dst_type", "dst_id"])


def downgrade() -> None:
    for name in (
        "lineage_edges",
        "artifacts",
        "metric_chunks",
        "metric_series",
        "run_tags",
        "run_params",
        "runs",
        "experiments",
    ):
        op.drop_table(name)
