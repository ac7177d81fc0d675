"""Token scopes: the experiment and model name patterns an API token is limited to.

Both columns hold a JSON list of fnmatch patterns, and both are NULL for a token that is
not scoped (every token created before this revision), so no stored row changes.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("experiment_scope", sa.Text(), nullable=True))
    op.add_column("api_tokens", sa.Column("model_scope", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("model_scope")
        batch.drop_column("experiment_scope")
