"""A matured block's credits go from the Redis share books to PostgreSQL exactly once (the block hash is
the key); an orphan is reversed by a compensating transaction; PostgreSQL down only delays them."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import pytest

from pool.config.ledger import PayoutConfig
from pool.money.books import BLOCK_REWARDS, ORPHAN_LOSSES, PAID, Books
from pool.money.credits import PostgresBlockBooks
from pool.shares.ledger import Ledger
from pool.sim.postgres_server import PostgresProcess
from tests.ledger.support import make_ledger
from tests.ledger.test_payouts import BLOCK, REWARD, Node, pplns_history
from tests.support.books import money_keys_in_redis

# PPLNS, N = 2.5 x 1000: carol 1000 + (bob 600, alice 400) + half of alice's oldest 1000 = 900 : 600 :
# 1000 of 2500; 50 BTC - 1 % = 4.95e12 msat split so, the fee (5e10 msat) to @pool.
PPLNS_CREDITS = {"alice": 1_782_000_000_000, "bob": 1_188_000_000_000, "carol": 1_980_000_000_000,
                 "@pool": 50_000_000_000}


async def books_ledger(journal_dir: Path, redis_url: str, pool: asyncpg.Pool, payouts: PayoutConfig,
                       node: Node) -> tuple[Ledger, Books]:
    # The test drives the watcher: its background pass runs once at start, then not for an hour.
    ledger = make_ledger(journal_dir, redis_url, payouts=payouts, confirmations=node, block_poll_interval_s=3600)
    books = Books(pool)
    assert ledger.watcher is not None
    ledger.watcher.books = PostgresBlockBooks(ledger.payouts, books)
    await ledger.start()
    ledger.set_network(1000, height=100)
    await pplns_history(ledger, time.time() - 100)
    return ledger, books


async def journal(pool: asyncpg.Pool) -> list[tuple[str, str, str, int]]:
    rows = await pool.fetch("SELECT j.kind, j.ref, e.account, e.amount_msat FROM entries e "
                            "JOIN journal j ON j.id = e.journal_id ORDER BY e.id")
    return [(r["kind"], r["ref"], r["account"], r["amount_msat"]) for r in rows]


async def test_pplns_credits_once_in_postgres_and_an_orphan_is_reversed(
        redis_url: str, journal_dir: Path, books_pool: asyncpg.Pool) -> None:
    node = Node()
    ledger, books = await books_ledger(journal_dir, redis_url, books_pool, PayoutConfig(pplns_factor=2.5), node)
    watcher = ledger.watcher
    assert watcher is not None
    try:
        node.confirmations[BLOCK] = 99
        assert await watcher.poll_once() == []
        assert await books.balances() == {}
        node.confirmations[BLOCK] = 100
        (change,) = await watcher.poll_once()
        assert (change.old_status, change.new_status) == ("pending", "confirmed")
        assert await books.balances() == PPLNS_CREDITS
        assert sum(PPLNS_CREDITS.values()) == REWARD * 1000
        assert await money_keys_in_redis(ledger.client, ledger.keys) == []   # no money in Redis
        assert await watcher.poll_once() == []                # a second pass credits nothing more
        assert await books.balances() == PPLNS_CREDITS

        node.confirmations[BLOCK] = -1                        # reorged out after maturity
        (change,) = await watcher.poll_once()
        assert change.new_status == "orphaned"
        assert await books.balances() == {}
        assert await journal(books_pool) == (
            [("block_credit", BLOCK, a, v) for a, v in sorted({**PPLNS_CREDITS, BLOCK_REWARDS: -REWARD * 1000}.items())]
            + [("orphan_reversal", BLOCK, a, -v)
               for a, v in sorted({**PPLNS_CREDITS, BLOCK_REWARDS: -REWARD * 1000}.items())])
        assert (await books.snapshot()).consistent
        (block,) = await ledger.reader.blocks()
        assert block.status == "orphaned"
    finally:
        await ledger.stop()


async def test_an_orphan_after_payout_charges_what_was_paid_to_orphan_losses(
        redis_url: str, journal_dir: Path, books_pool: asyncpg.Pool) -> None:
    node = Node()
    ledger, books = await books_ledger(journal_dir, redis_url, books_pool, PayoutConfig(pplns_factor=2.5), node)
    try:
        node.confirmations[BLOCK] = 100
        await ledger.watcher.poll_once()  # type: ignore[union-attr]
        # Alice was paid 1,000,000,000 msat of her credit since.
        await books.post("payout", "k" * 32, {"alice": -1_000_000_000, PAID: 1_000_000_000})
        node.confirmations[BLOCK] = -1
        await ledger.watcher.poll_once()  # type: ignore[union-attr]
        everything = await books.balances(include_counter_accounts=True)
        assert everything == {PAID: 1_000_000_000, ORPHAN_LOSSES: -1_000_000_000}
        assert (await books.snapshot()).consistent
    finally:
        await ledger.stop()


async def test_a_crash_between_the_books_and_redis_repeats_nothing(
        redis_url: str, journal_dir: Path, books_pool: asyncpg.Pool) -> None:
    """The books committed, the process died before Redis marked the block: the next pass marks it."""
    node = Node()
    ledger, books = await books_ledger(journal_dir, redis_url, books_pool, PayoutConfig(pplns_factor=2.5), node)
    try:
        credits = await ledger.payouts.scheme_credits(BLOCK)
        assert credits == PPLNS_CREDITS
        assert await books.credit_block(BLOCK, credits)       # the step the crashed process completed
        node.confirmations[BLOCK] = 100
        (change,) = await ledger.watcher.poll_once()  # type: ignore[union-attr]
        assert change.new_status == "confirmed"
        assert await books.balances() == PPLNS_CREDITS
        assert await books_pool.fetchval("SELECT count(*) FROM journal") == 1
    finally:
        await ledger.stop()


@pytest.mark.parametrize(("scheme", "expected"), [
    # SOLO: the finder (carol) gets 98 %, the pool 2 %.
    ("solo", {"carol": 4_900_000_000_000, "@pool": 100_000_000_000}),
    # PPS/FPPS paid the miners per share; the block itself is the pool's.
    ("pps", {"@pool": 5_000_000_000_000}),
    ("fpps", {"@pool": 5_000_000_000_000}),
])
async def test_block_credits_by_scheme(redis_url: str, journal_dir: Path, books_pool: asyncpg.Pool, scheme: str,
                                       expected: dict[str, int]) -> None:
    node = Node()
    ledger, books = await books_ledger(journal_dir, redis_url, books_pool,
                                       PayoutConfig(scheme=scheme, fee_percent=2.0), node)
    try:
        node.confirmations[BLOCK] = 100
        await ledger.watcher.poll_once()  # type: ignore[union-attr]
        assert await books.balances() == expected
    finally:
        await ledger.stop()


async def test_postgres_down_while_a_block_matures_credits_it_once_on_return(
        redis_url: str, journal_dir: Path) -> None:
    from pool.money.schema import migrate

    server = PostgresProcess()
    server.start()
    try:
        await migrate(server.dsn)
        pool = await asyncpg.create_pool(server.dsn, min_size=0, max_size=2, timeout=2, command_timeout=10)
        assert pool is not None
        node = Node()
        ledger, books = await books_ledger(journal_dir, redis_url, pool, PayoutConfig(pplns_factor=2.5), node)
        watcher = ledger.watcher
        assert watcher is not None
        try:
            server.stop()
            node.confirmations[BLOCK] = 100
            assert await watcher.poll_once() == []
            assert f"books for block {BLOCK}" in watcher.last_error
            (block,) = await ledger.reader.blocks()
            assert block.status == "pending"                     # waits; nothing written anywhere
            assert await money_keys_in_redis(ledger.client, ledger.keys) == []
            server.start()
            (change,) = await watcher.poll_once()
            assert change.new_status == "confirmed"
            assert await watcher.poll_once() == []
            assert await books.balances() == PPLNS_CREDITS
            assert await pool.fetchval("SELECT count(*) FROM journal") == 1
        finally:
            await ledger.stop()
            await pool.close()
    finally:
        server.remove()
