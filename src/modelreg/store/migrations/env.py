"""Alembic environment: migrations always run on a connection the registry hands in."""

from __future__ import annotations

from alembic import context

from modelreg.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("modelreg migrations run through `modelreg db upgrade`, not bare alembic")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
