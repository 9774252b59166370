"""Connecting to the books' database (asyncpg pool) from the [money] config."""

from __future__ import annotations

import asyncpg

from pool.config.money import MoneyConfig


class BooksUnavailable(Exception):
    """The database could not be reached or is not migrated; nothing was written."""


async def open_pool(config: MoneyConfig, application_name: str = "geostratum",
                    min_size: int | None = None) -> asyncpg.Pool:
    """min_size 0: nothing connects here; the first use does (a running pool starts without its books)."""
    if not config.enabled:
        raise BooksUnavailable("money.dsn is empty: the payout books need a PostgreSQL database")
    try:
        pool = await asyncpg.create_pool(
            config.dsn, password=config.password(),
            min_size=config.pool_min_size if min_size is None else min_size,
            max_size=config.pool_max_size, timeout=config.connect_timeout_s,
            command_timeout=config.command_timeout_s,
            server_settings={"application_name": application_name})
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise BooksUnavailable(f"cannot reach the books' database ({redacted(config.dsn)}): {exc}") from exc
    assert pool is not None
    return pool


def redacted(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or "@" not in rest:
        return dsn
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in userinfo else dsn
