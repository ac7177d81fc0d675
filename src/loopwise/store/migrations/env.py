"""Alembic environment: runs migrations on the connection loopwise hands over."""

from alembic import context

from loopwise.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("loopwise migrations run through `loopwise db upgrade`, not plain alembic")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
