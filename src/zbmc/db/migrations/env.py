"""Alembic environment: the engine is handed over by zbmc.db.migrate (never read from a file)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from zbmc.db.tables import metadata

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through `zbmc admin db upgrade`, not the alembic CLI")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
