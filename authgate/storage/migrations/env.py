"""Alembic environment: the URL comes from authgate's configuration, never from a file."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, event, pool

from authgate.storage.engine import sqlite_pragmas
from authgate.storage.tables import metadata

url = context.config.get_main_option("sqlalchemy.url") or ""
connectable = create_engine(url, poolclass=pool.NullPool)
if connectable.dialect.name == "sqlite":  # the database leaves the upgrade in WAL mode
    event.listen(connectable, "connect", sqlite_pragmas)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
