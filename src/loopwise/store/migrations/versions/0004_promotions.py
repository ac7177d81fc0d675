"""Promotion decisions: every gate evaluation, passed or not, with its reasons.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "promotion_decisions",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("model_id", sa.String(26), nullable=False),
        sa.Column("alias", sa.String(250), nullable=False),
        sa.Column("candidate_version", sa.Integer(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("checks", sa.Text(), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name="fk_promotion_decisions_model_id_registered_models",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_promotion_decisions"),
    )
    op.create_index(
        "ix_promotion_decisions_model_id_decided_at",
        "promotion_decisions",
        ["model_id", "decided_at"],
    )


def downgrade() -> None:
    op.drop_table("promotion_decisions")
