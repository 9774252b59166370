"""Alembic environment for the payout books: the connection comes from pool.money.schema.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from pool.money.schema import MIGRATION_LOCK, VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, transactional_ddl=True)
with context.begin_transaction():
    # Two processes migrating at once: the second waits, then finds nothing left to do.
    connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
    context.run_migrations()
