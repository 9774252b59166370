"""A migrated PostgreSQL database per test, cheaply: the books' schema is migrated once per session into a
template database on the session's server (tests/conftest.py: postgres_server), and each test gets its
own clone (CREATE DATABASE ... TEMPLATE, a file copy), dropped afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from pool.money.schema import migrate
from pool.shares.keys import Keys
from pool.sim.postgres_server import PostgresProcess

TEMPLATE = "gs_books_template"


def _dsn(server: PostgresProcess, database: str) -> str:
    return f"postgresql://{server.user}@127.0.0.1:{server.port}/{database}"


@pytest.fixture(scope="session")
def books_template(postgres_server: PostgresProcess) -> Iterator[str]:
    async def build() -> None:
        conn = await asyncpg.connect(postgres_server.dsn)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
            await conn.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await conn.close()
        await migrate(_dsn(postgres_server, TEMPLATE))

    asyncio.run(asyncio.wait_for(build(), 60))
    yield TEMPLATE


@contextlib.asynccontextmanager
async def own_database(server: PostgresProcess, prefix: str, template: str = "") -> AsyncIterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    clause = f" TEMPLATE {template}" if template else ""
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}{clause}")
    finally:
        await conn.close()
    try:
        yield _dsn(server, name)
    finally:
        conn = await asyncpg.connect(server.dsn)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()


@pytest.fixture
async def books_dsn(postgres_server: PostgresProcess, books_template: str) -> AsyncIterator[str]:
    """A migrated database of this test's own."""
    async with own_database(postgres_server, "t", books_template) as dsn:
        yield dsn


@pytest.fixture
async def empty_dsn(postgres_server: PostgresProcess) -> AsyncIterator[str]:
    """A database with no schema at all (for the migration tests)."""
    async with own_database(postgres_server, "e") as dsn:
        yield dsn




async def money_keys_in_redis(client: Any, keys: Keys) -> list[str]:
    """The keys of the old Redis payout ledger that exist (none should: money lives only in PostgreSQL)."""
    names = [keys.balances, keys.ledger, keys.payout_batches]
    return [name for name in names if await client.exists(name)]
