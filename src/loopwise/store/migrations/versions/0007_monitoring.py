"""Monitoring: evaluated windows, their figures (overall and per slice), and alerts.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.String(26)


def upgrade() -> None:
    op.create_table(
        "monitor_windows",
        sa.Column("id", ID, nullable=False),
        sa.Column("monitor", sa.String(63), nullable=False),
        sa.Column("endpoint", sa.String(63), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("model_version_id", ID, nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("labelled", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_windows"),
        sa.UniqueConstraint(
            "monitor", "window_start", "model", name="uq_monitor_windows_monitor_window_start_model"
        ),
    )
    op.create_index(
        "ix_monitor_windows_monitor_window_end", "monitor_windows", ["monitor", "window_end"]
    )
    op.create_table(
        "monitor_values",
        sa.Column("window_id", ID, nullable=False),
        sa.Column("slice", sa.String(300), nullable=False),
        sa.Column("metric", sa.String(300), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["monitor_windows.id"],
            name="fk_monitor_values_window_id_monitor_windows",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("window_id", "slice", "metric", name="pk_monitor_values"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", ID, nullable=False),
        sa.Column("monitor", sa.String(63), nullable=False),
        sa.Column("endpoint", sa.String(63), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("slice", sa.String(300), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(300), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("fired_at", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("deliveries", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index(
        "ix_alerts_monitor_rule_slice_state", "alerts", ["monitor", "rule", "slice", "state"]
    )
    op.create_index("ix_alerts_endpoint_fired_at", "alerts", ["endpoint", "fired_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_endpoint_fired_at", table_name="alerts")
    op.drop_index("ix_alerts_monitor_rule_slice_state", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("monitor_values")
    op.drop_index("ix_monitor_windows_monitor_window_end", table_name="monitor_windows")
    op.drop_table("monitor_windows")
