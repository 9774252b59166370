"""`geostratum db migrate|status`: the books' schema (Alembic revisions in pool/money/migrations)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import asyncpg

from pool import config as config_module
from pool.config.options import config_option
from pool.money.db import redacted
from pool.money.schema import current_revision, head_revision, migrate


async def _run(args: argparse.Namespace) -> int:
    config = config_module.load(args.config)
    money = config.money
    if not money.enabled:
        print("config error: money.dsn: is empty (the books' PostgreSQL URL)", file=sys.stderr)
        return 2
    if args.action == "migrate":
        before, after = await migrate(money.dsn, money.password())
        if before == after:
            print(f"schema already at {after} ({redacted(money.dsn)}); nothing to do")
        else:
            print(f"schema migrated from {before or 'empty'} to {after} ({redacted(money.dsn)})")
        return 0
    conn = await asyncpg.connect(money.dsn, password=money.password(), timeout=money.connect_timeout_s)
    try:
        revision = await current_revision(conn)
    finally:
        await conn.close()
    head = head_revision()
    print(f"schema at {revision or 'empty'}; this version needs {head}"
          + ("" if revision == head else " (run `geostratum db migrate`)"))
    return 0 if revision == head else 1


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except config_module.ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"cannot use the books' database: {exc}", file=sys.stderr)
        return 1


def register(sub: Any) -> None:
    config = [config_option()]
    parser = sub.add_parser("db", help="the payout books' PostgreSQL schema (migrate, status)", parents=config)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("migrate", help="apply every schema migration not yet applied (idempotent)", parents=config)
    actions.add_parser("status", help="the schema revision in the database and the one this version needs",
                       parents=config)
    parser.set_defaults(func=run)
