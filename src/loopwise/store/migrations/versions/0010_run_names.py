"""Runs: an index on ``runs.name``, since every command that takes a run takes its name
(``loopwise runs show calm-tiger-826``), and without one a look-up reads the whole table.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_name", "runs", ["name"])


def downgrade() -> None:
    op.drop_index("ix_runs_name", table_name="runs")
