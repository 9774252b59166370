"""`geostratum payouts migrate-from-redis`: a Redis ledger in the old layout (credits, a sent batch, a batch
in flight; tests/money/legacy_ledger.py) moved into PostgreSQL once, balances proven equal, and the books
carry on from there."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from pool.cli import main
from pool.config.ledger import PayoutConfig
from pool.money.books import IN_FLIGHT, OPENING, ORPHAN_LOSSES, PAID, Books
from pool.money.payments import Payouts
from pool.money.redis_import import LegacyRedisLedger, opening_entries
from pool.shares.payouts import Payment, PayoutBatch
from tests.ledger.support import make_ledger
from tests.ledger.test_payouts import BLOCK, Node, pplns_history
from tests.ledger.wallet_standin import WalletStandIn, rpc_client
from tests.money import legacy_ledger as legacy


async def test_a_redis_ledger_moves_once_and_balances_equal(redis_url: str, journal_dir: Path, books_dsn: str,
                                                            books_pool: asyncpg.Pool, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    node = Node()
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(pplns_factor=2.5), confirmations=node,
                         block_poll_interval_s=3600)
    await ledger.start()
    wallet = WalletStandIn()
    await wallet.start()
    try:
        # The same block an older version credited in its Redis ledger, then paid alice and began paying bob.
        now = time.time()
        await pplns_history(ledger, now - 100)
        credits = await ledger.payouts.scheme_credits(BLOCK)
        assert credits is not None
        client, keys = ledger.client, ledger.keys
        await legacy.write_credits(client, keys, BLOCK, credits, now)
        sent = PayoutBatch(key="a" * 32, created_at=now, status="sent", txid="f" * 64, attempts=1,
                           total_sat=1_782_000_000,
                           payments=[Payment(account="alice", address="alice", amount_sat=1_782_000_000)])
        flying = PayoutBatch(key="b" * 32, created_at=now + 1, total_sat=1_188_000_000,
                             payments=[Payment(account="bob", address="bob", amount_sat=1_188_000_000)])
        for batch in (sent, flying):
            await legacy.write_batch(client, keys, batch)
        redis_balances = await LegacyRedisLedger(client, keys).balances()
    finally:
        await ledger.stop()
    # Alice paid (her credit was whole satoshis), bob in flight, carol and the fee still owed.
    assert redis_balances == {"carol": 1_980_000_000_000, "@pool": 50_000_000_000}

    config = tmp_path / "pool.toml"
    config.write_text(f"""
[chain]
backend = "bitcoind"
network = "regtest"
[[chain.nodes]]
url = "{wallet.url.rstrip('/')}"
[redis]
url = "{redis_url}"
[money]
dsn = "{books_dsn}"
""")

    async def cli(*args: str) -> tuple[int, str]:
        code = await asyncio.to_thread(main, ["payouts", "--config", str(config), *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    try:
        code, out = await cli("migrate-from-redis")
        assert code == 0 and "balances equal account by account" in out, out
        assert "and 2 payout batches from Redis" in out
        books = Books(books_pool)
        assert await books.balances() == redis_balances
        everything = await books.balances(include_counter_accounts=True)
        assert everything[IN_FLIGHT] == flying.total_sat * 1000
        assert everything[PAID] == sent.total_sat * 1000
        assert everything[OPENING] == -(sum(redis_balances.values()) + (flying.total_sat + sent.total_sat) * 1000)
        assert (await books.snapshot()).consistent
        code, out = await cli("migrate-from-redis")
        assert code == 0 and "already moved" in out
        assert await books_pool.fetchval("SELECT count(*) FROM journal") == 1

        payouts = Payouts(books_pool)
        assert (await payouts.batch(sent.key)).status == "sent"
        assert (await payouts.batch(flying.key)).status == "created"
        # The books carry on: the batch in flight is sent from PostgreSQL.
        async with aiohttp.ClientSession() as session:
            await payouts.send_batch(flying.key, rpc_client(session, wallet.url))
        snap = await books.snapshot()
        assert snap.paid_msat == (sent.total_sat + flying.total_sat) * 1000 and snap.in_flight_msat == 0
        assert snap.consistent
    finally:
        await wallet.stop()
    assert len(wallet.sends()) == 1                  # only the batch in flight, sent from the books


def test_a_negative_miner_balance_opens_at_zero_charged_to_orphan_losses() -> None:
    entries, debts = opening_entries({"alice": 5000, "bob": -700, "@pool": 100}, [])
    assert debts == {"bob": -700}
    assert entries == {"alice": 5000, "@pool": 100, ORPHAN_LOSSES: -700, OPENING: -4400}
    assert sum(entries.values()) == 0
