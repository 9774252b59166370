"""The books' schema under version control: numbered migrations applied by Alembic.

Each revision in migrations/versions/ runs one numbered SQL file from migrations/; Alembic records
the applied revision in the `schema_version` table, so `geostratum db migrate` is idempotent and two
processes migrating at once serialize on an advisory lock. (Within one process, run one migrate() at a
time: Alembic's `op` and `context` are module-level proxies.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "schema_version"
MIGRATION_LOCK = 0x6765_6F73  # pg_advisory_xact_lock key held while migrating ("geos")
# Alembic announces each of its own plugins at INFO when it is first imported ("setup plugin
# alembic.autogenerate.tables", seven lines at every pool start): nothing for an operator.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def run_sql_file(name: str) -> None:
    """Inside a revision's upgrade(): one SQL file, in the migration's transaction.

    asyncpg runs a multi-statement script (functions with $$ bodies included) as one simple query;
    SQLAlchemy's own execute would prepare it, which PostgreSQL refuses for more than one statement."""
    from alembic import op
    from sqlalchemy.util import await_only

    driver = op.get_bind().connection.driver_connection
    await_only(driver.execute((MIGRATIONS / name).read_text()))


def _alembic_config():  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(conn: asyncpg.Connection) -> str | None:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", VERSION_TABLE)
    if not exists:
        return None
    return await conn.fetchval(f"SELECT version_num FROM {VERSION_TABLE}")


async def migrate(dsn: str, password: str | None = None, target: str = "head") -> tuple[str | None, str]:
    """Apply every migration up to `target`; returns (revision before, revision after)."""
    from alembic import command
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(dsn, password=password)

    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect, poolclass=NullPool)
    config = _alembic_config()

    def upgrade(sync_connection) -> tuple[str | None, str | None]:  # type: ignore[no-untyped-def]
        # The lock first (env.py takes it again, re-entrantly): a second process reads the revision only
        # after the first has committed, so it finds nothing to do.
        sync_connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        revision = f"SELECT version_num FROM {VERSION_TABLE}"
        exists = sync_connection.exec_driver_sql(f"SELECT to_regclass('{VERSION_TABLE}') IS NOT NULL").scalar()
        before = sync_connection.exec_driver_sql(revision).scalar() if exists else None
        config.attributes["connection"] = sync_connection
        command.upgrade(config, target)
        return before, sync_connection.exec_driver_sql(revision).scalar()

    try:
        async with engine.begin() as conn:
            before, after = await conn.run_sync(upgrade)
    finally:
        await engine.dispose()
    return before, after or ""
