"""Monitoring: what kept a window's figures from being computed, and an alert's first value.

``monitor_windows.problems`` holds the problems met evaluating a window (a JSON list of
messages, e.g. feedback labels that are not the model's), stored beside the figures that
could be computed. ``alerts.fired_value`` keeps the figure that fired the alert, while
``value`` follows the latest window in which it held. Alerts stored before this revision
have no ``fired_value``.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("monitor_windows", sa.Column("problems", sa.Text(), nullable=True))
    op.add_column("alerts", sa.Column("fired_value", sa.Float(), nullable=True))


def downgrade() -> None:  # SQLite drops a column by copying the table: batch mode
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("fired_value")
    with op.batch_alter_table("monitor_windows") as batch:
        batch.drop_column("problems")
