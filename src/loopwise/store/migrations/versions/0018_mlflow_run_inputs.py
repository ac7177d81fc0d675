"""What an MLflow client logs as a run's inputs: datasets and logged models.

``mlflow.log_input(dataset, context="training")`` (and MLflow's autologging) records a
dataset's name, digest, source and schema against a run -- metadata only, MLflow never
sends the data -- and MLflow 3 records the logged models a run used. One row per input of
a run (``input_key``: the dataset's name and digest, or the model's id), with its input
tags (``mlflow.data.context``) as a JSON list. A new table; no stored row changes.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlflow_run_inputs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(26), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("input_key", sa.String(600), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_mlflow_run_inputs_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_mlflow_run_inputs"),
        sa.UniqueConstraint(
            "run_id", "kind", "input_key", name="uq_mlflow_run_inputs_run_id_kind_input_key"
        ),
    )


def downgrade() -> None:
    op.drop_table("mlflow_run_inputs")
