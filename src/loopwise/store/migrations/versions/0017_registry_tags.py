"""Tags of registered models, and when a model or version last changed.

``registered_models.tags`` holds a model's key/value tags as a JSON object, as
``model_versions.tags`` does for a version (MLflow's ``set_registered_model_tag``; a
model's tags are few and read with the model, so no table of their own).
``registered_models.updated_at`` and ``model_versions.updated_at`` (microseconds, NULL
until the first change) are when a description or a tag last changed -- MLflow's
``last_updated_timestamp``. New nullable columns; no stored row changes.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("registered_models", sa.Column("tags", sa.Text(), nullable=True))
    op.add_column("registered_models", sa.Column("updated_at", sa.BigInteger(), nullable=True))
    op.add_column("model_versions", sa.Column("updated_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("updated_at")
    with op.batch_alter_table("registered_models") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("tags")
