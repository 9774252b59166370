"""A pool's block watcher in a process of its own, for the crash tests: one pass over the open blocks
with every block at 100 confirmations, the credits going to the PostgreSQL books.

    python -m tests.money.credit_child REDIS_URL DSN JOURNAL_DIR PPLNS_FACTOR
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from pool.config.ledger import LedgerConfig, PayoutConfig, RedisConfig
from pool.money.books import Books
from pool.money.credits import PostgresBlockBooks
from pool.shares.ledger import Ledger

APPLICATION = "crash-child"


async def confirmations(block_hash: str) -> int:
    return 100


async def main(redis_url: str, dsn: str, journal_dir: str, pplns_factor: float) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, command_timeout=60,
                                     server_settings={"application_name": APPLICATION})
    assert pool is not None
    # A long socket timeout: a test pauses Redis writes and kills this process while it waits.
    ledger = Ledger(LedgerConfig(journal_dir=journal_dir, flush_interval_ms=20),
                    RedisConfig(url=redis_url, socket_timeout_s=60.0), "crash-child",
                    PayoutConfig(pplns_factor=pplns_factor), confirmations=confirmations)
    assert ledger.watcher is not None
    ledger.watcher.books = PostgresBlockBooks(ledger.payouts, Books(pool))
    try:  # the watcher alone: ledger.start() would also run it in the background
        changes = await ledger.watcher.poll_once()
        print(" ".join(f"{c.block_hash}:{c.new_status}" for c in changes) or "no change", flush=True)
        if ledger.watcher.last_error:
            print(ledger.watcher.last_error, flush=True)
    finally:
        await ledger.client.aclose()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])), 120))
