"""MLflow 3's logged models, as an MLflow client makes them through ``loopwise server``.

A logged model is MLflow's unit between a run and the registry: ``mlflow.<flavor>.
log_model`` creates one (its files go to its own artifact location), and
``register_model`` turns it into a model version. The table keeps what MLflow's API
answers about it; its files are rows of ``artifacts`` (entity ``mlflow_model``). No stored
row changes.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlflow_logged_models",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("experiment_id", sa.String(26), sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("source_run_id", sa.String(26), sa.ForeignKey("runs.id"), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("model_type", sa.String(250), nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_mlflow_logged_models_experiment_id_name",
        "mlflow_logged_models",
        ["experiment_id", "name"],
    )


def downgrade() -> None:
    op.drop_index("ix_mlflow_logged_models_experiment_id_name", "mlflow_logged_models")
    op.drop_table("mlflow_logged_models")
