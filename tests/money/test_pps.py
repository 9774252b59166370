"""PPS/FPPS with the books in PostgreSQL: per-share credits leave Redis through the outbox, once per batch."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import pytest

from pool.config.ledger import PayoutConfig
from pool.money.books import PPS_SOURCE, Books
from pool.money.credits import PostgresBlockBooks
from pool.money.pps import PerShareCredits
from tests.ledger.support import flush_until_done, make_ledger
from tests.ledger.test_payouts import BLOCK, Node, share
from tests.support.books import money_keys_in_redis


@pytest.mark.parametrize(("scheme", "fee_ratio", "per_share_msat"), [
    # 1000 / 1e6 x 3.125 BTC (3.125e11 msat) x 98 % = 306,250,000 msat
    ("pps", 0.0, 306_250_000),
    # the same x (1 + 0.1 fee ratio) = 336,875,000 msat
    ("fpps", 0.1, 336_875_000),
])
async def test_per_share_credits_reach_the_books_once(redis_url: str, journal_dir: Path, books_pool: asyncpg.Pool,
                                                      scheme: str, fee_ratio: float, per_share_msat: int) -> None:
    node = Node()
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(scheme=scheme, fee_percent=2.0),
                         confirmations=node, block_poll_interval_s=3600)
    books = Books(books_pool)
    assert ledger.watcher is not None
    ledger.watcher.books = PostgresBlockBooks(ledger.payouts, books)
    ledger.set_network(1e6, subsidy_sat=312_500_000, fee_ratio=fee_ratio)
    await ledger.start()
    mover = PerShareCredits(lambda: ledger.client, ledger.keys, books, interval_s=3600)
    try:
        now = time.time()
        for _ in range(3):
            ledger.add(share("alice", 1000, now))
        ledger.add(share("bob", 2000, now))
        await flush_until_done(ledger)
        assert await money_keys_in_redis(ledger.client, ledger.keys) == []   # no money in Redis
        assert await ledger.client.xlen(ledger.keys.pps_outbox) >= 1
        assert await mover.move_once() >= 1
        assert await ledger.client.xlen(ledger.keys.pps_outbox) == 0
        assert await books.balances() == {"alice": 3 * per_share_msat, "bob": 2 * per_share_msat}
        assert await mover.move_once() == 0
        # The block itself belongs to the pool, which already paid per share.
        await ledger.record_block(BLOCK, 840_000, "bob", "bob.rig0", 312_500_000, network_difficulty=1e6)
        await flush_until_done(ledger)
        node.confirmations[BLOCK] = 100
        await ledger.watcher.poll_once()
        everything = await books.balances(include_counter_accounts=True)
        assert everything["@pool"] == 312_500_000 * 1000
        assert everything[PPS_SOURCE] == -5 * per_share_msat
        assert (await books.snapshot()).consistent
    finally:
        await ledger.stop()


async def test_a_crash_between_the_books_and_the_outbox_delete_moves_nothing_twice(
        redis_url: str, journal_dir: Path, books_pool: asyncpg.Pool) -> None:
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(scheme="pps", fee_percent=2.0))
    books = Books(books_pool)
    ledger.set_network(1e6, subsidy_sat=312_500_000)
    await ledger.start()
    try:
        ledger.add(share("alice", 1000, time.time()))
        await flush_until_done(ledger)
        ((_, fields),) = await ledger.client.xrange(ledger.keys.pps_outbox)
        ref = fields[b"ref"].decode()
        # The step the crashed mover completed: the batch is in the books, still in the outbox.
        assert await books.post("pps_credit", ref, {"alice": 306_250_000, PPS_SOURCE: -306_250_000})
        mover = PerShareCredits(lambda: ledger.client, ledger.keys, books, interval_s=3600)
        assert await mover.move_once() == 0
        assert await ledger.client.xlen(ledger.keys.pps_outbox) == 0
        assert await books.balances() == {"alice": 306_250_000}
    finally:
        await ledger.stop()
