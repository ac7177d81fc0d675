"""Pipeline schedules: cron and new-data triggers of pipelines, and the ticks schedulers
claimed (one row per tick, its primary key the claim that only one scheduler wins). New
tables only; no stored row changes.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ID = sa.String(26)
KEY = sa.String(250)


def upgrade() -> None:
    op.create_table(
        "pipeline_schedules",
        sa.Column("id", ID, nullable=False),
        sa.Column("pipeline", KEY, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("input_param", KEY, nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("executor", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("last_tick", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_schedules"),
    )
    op.create_index("ix_pipeline_schedules_pipeline", "pipeline_schedules", ["pipeline"])
    op.create_table(
        "pipeline_ticks",
        sa.Column("schedule_id", ID, sa.ForeignKey("pipeline_schedules.id"), nullable=False),
        sa.Column("tick_key", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(512), nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("claimed_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("schedule_id", "tick_key", name="pk_pipeline_ticks"),
    )


def downgrade() -> None:
    op.drop_table("pipeline_ticks")
    op.drop_index("ix_pipeline_schedules_pipeline", "pipeline_schedules")
    op.drop_table("pipeline_schedules")
