"""Pipelines: named pipelines, pipeline runs (tracking runs with their parameters) and
their step runs (status, cache key, where the output is stored). New tables only; no
stored row changes.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.String(26)
KEY = sa.String(250)


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", KEY, nullable=False),
        sa.Column("entrypoint", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pipelines"),
        sa.UniqueConstraint("name", name="uq_pipelines_name"),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("pipeline_id", ID, sa.ForeignKey("pipelines.id"), nullable=False),
        sa.Column("entrypoint", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("executor", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(512), nullable=True),
        sa.Column("resumed_from", ID, nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_pipeline_runs"),
    )
    op.create_index(
        "ix_pipeline_runs_pipeline_id_created_at", "pipeline_runs", ["pipeline_id", "created_at"]
    )
    op.create_table(
        "pipeline_steps",
        sa.Column("pipeline_run_id", ID, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("step", KEY, nullable=False),
        sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("cached_from", ID, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("output_kind", sa.String(32), nullable=True),
        sa.Column("output_ref", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("pipeline_run_id", "key", name="pk_pipeline_steps"),
    )
    op.create_index("ix_pipeline_steps_cache_key_status", "pipeline_steps", ["cache_key", "status"])
    op.create_index("ix_pipeline_steps_run_id", "pipeline_steps", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_pipeline_steps_run_id", "pipeline_steps")
    op.drop_index("ix_pipeline_steps_cache_key_status", "pipeline_steps")
    op.drop_table("pipeline_steps")
    op.drop_index("ix_pipeline_runs_pipeline_id_created_at", "pipeline_runs")
    op.drop_table("pipeline_runs")
    op.drop_table("pipelines")
