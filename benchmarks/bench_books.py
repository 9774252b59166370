"""The payout books in PostgreSQL at pool scale: crediting one block whose PPLNS window holds N accounts
(default 50,000), and the balances query over those N accounts.

    .venv/bin/python benchmarks/bench_books.py [--accounts 50000] [--repeats 5] [--dsn postgresql://...]

Without --dsn it starts its own PostgreSQL (initdb + pg_ctl in a temporary folder, fsync on: a commit
costs what it costs in production). Each figure is the median of the repeats. Baselines in the same run:
the same N rows inserted into a plain table (no triggers, no foreign key, no balances), and the same rows
read back from it, so the ratios show what the journal's guarantees cost.
Ends with one line: RESULT {json}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from pool.money.books import Books
from pool.money.schema import migrate
from pool.shares.schemes import split_reward


def window(accounts: int, block: int) -> dict[str, float]:
    """A PPLNS window: N accounts with difficulties spread over three orders of magnitude."""
    return {f"acct{i:06d}": float(1 + (i * 7919 + block * 104_729) % 1000) * (10 if i % 10 == 0 else 1)
            for i in range(accounts)}


async def run(dsn: str, accounts: int, repeats: int) -> dict[str, object]:
    await migrate(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, command_timeout=600)
    assert pool is not None
    books = Books(pool)
    await pool.execute("CREATE TABLE IF NOT EXISTS plain_rows (ref text, account text, amount_msat bigint)")
    split_s, credit_s, plain_insert_s, balances_s, plain_read_s = [], [], [], [], []
    try:
        for block in range(repeats):
            weights = window(accounts, block)
            started = time.perf_counter()
            credits = split_reward(312_500_000, weights, 1.0, "@pool")
            split_s.append(time.perf_counter() - started)
            block_hash = uuid.uuid4().hex * 2
            started = time.perf_counter()
            assert await books.credit_block(block_hash, credits)
            credit_s.append(time.perf_counter() - started)
            names, amounts = list(credits), list(credits.values())
            started = time.perf_counter()
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO plain_rows SELECT $1, a, m FROM unnest($2::text[], $3::bigint[]) "
                                   "AS t(a, m)", block_hash, names, amounts)
            plain_insert_s.append(time.perf_counter() - started)
        for _ in range(max(repeats, 5)):
            started = time.perf_counter()
            balances = await books.balances()
            balances_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            rows = await pool.fetch("SELECT DISTINCT ON (account) account, amount_msat FROM plain_rows "
                                    "WHERE ref = $1", block_hash)
            plain_read_s.append(time.perf_counter() - started)
        assert len(balances) == accounts + 1 and len(rows) >= accounts      # N miners and @pool
        assert not await books.inconsistencies()
        server_version = await pool.fetchval("SHOW server_version")
    finally:
        await pool.close()
    credit, plain = statistics.median(credit_s), statistics.median(plain_insert_s)
    read, plain_read = statistics.median(balances_s), statistics.median(plain_read_s)
    return {
        "accounts": accounts, "repeats": repeats, "postgres": server_version,
        "pplns_split_s": round(statistics.median(split_s), 4),
        "credit_block_s": round(credit, 4), "credit_entries_per_s": round((accounts + 2) / credit),
        "plain_insert_s": round(plain, 4), "credit_vs_plain_insert": round(credit / plain, 2),
        "balances_query_s": round(read, 4), "plain_read_s": round(plain_read, 4),
        "balances_vs_plain_read": round(read / plain_read, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dsn", default="", help="an empty database to use (default: start a server)")
    args = parser.parse_args()
    if args.dsn:
        result = asyncio.run(run(args.dsn, args.accounts, args.repeats))
    else:
        from pool.sim.postgres_server import PostgresProcess

        server = PostgresProcess(fsync=True)
        server.start()
        try:
            result = asyncio.run(run(server.dsn, args.accounts, args.repeats))
        finally:
            server.remove()
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
