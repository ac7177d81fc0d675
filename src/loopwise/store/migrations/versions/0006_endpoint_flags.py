"""Endpoint model flags: every switch of an endpoint's model on or off, newest last.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "endpoint_flag_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint", sa.String(63), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("set_at", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_endpoint_flag_events"),
    )
    op.create_index(
        "ix_endpoint_flag_events_endpoint_id", "endpoint_flag_events", ["endpoint", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_endpoint_flag_events_endpoint_id", table_name="endpoint_flag_events")
    op.drop_table("endpoint_flag_events")
