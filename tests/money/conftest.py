"""Each money test gets its own database, cloned from one migrated template on the session's server
(tests/support/books.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.integration.conftest import fleet  # noqa: F401  (the pool tests' miners, reaped on failure)


@pytest.fixture
async def books_pool(books_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(books_dsn, min_size=1, max_size=4, command_timeout=30)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "journal"
