"""Soft deletion of runs and experiments, and experiment tags.

``runs.deleted_at`` and ``experiments.deleted_at`` (microseconds, NULL while not deleted):
a deleted run or experiment keeps every row that hangs off it -- MLflow's
``delete_run``/``delete_experiment`` are reversible (``restore_*``), and the lineage graph
must not lose what a deployed model was trained by -- and is only left out of searches and
listings. ``experiment_tags`` holds an experiment's key/value tags (MLflow's
``set_experiment_tag``). New nullable columns and a new table; no stored row changes.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ID = sa.String(26)
KEY = sa.String(250)


def upgrade() -> None:
    op.add_column("runs", sa.Column("deleted_at", sa.BigInteger(), nullable=True))
    op.add_column("experiments", sa.Column("deleted_at", sa.BigInteger(), nullable=True))
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_experiment_tags_experiment_id_experiments",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "key", name="pk_experiment_tags"),
    )


def downgrade() -> None:
    op.drop_table("experiment_tags")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("deleted_at")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("deleted_at")
