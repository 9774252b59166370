"""The journal's rules are the database's: balanced transactions, one per cause, append-only, no
negative balance, balances moved in the same transaction as the entries."""

from __future__ import annotations

import asyncpg
import pytest

from pool.money.books import BLOCK_REWARDS, Books, BooksError

H1 = "00" * 31 + "01"


async def test_a_balanced_transaction_moves_balances_once_per_cause(books_pool: asyncpg.Pool) -> None:
    books = Books(books_pool)
    assert await books.post("block_credit", H1, {BLOCK_REWARDS: -1000, "alice": 900, "@pool": 100})
    assert not await books.post("block_credit", H1, {BLOCK_REWARDS: -1000, "alice": 900, "@pool": 100})
    assert await books.balances() == {"alice": 900, "@pool": 100}
    assert (await books.balances(include_counter_accounts=True))[BLOCK_REWARDS] == -1000
    assert await books.inconsistencies() == {}
    snap = await books.snapshot()
    assert (snap.unpaid_msat, snap.pool_msat, snap.rewards_msat, snap.journal_transactions) == (900, 100, 1000, 1)
    assert snap.consistent
    assert [(line.kind, line.account, line.msat) for line in await books.lines("alice")] == [
        ("block_credit", "alice", 900)]


async def test_the_database_refuses_what_would_break_the_books(books_pool: asyncpg.Pool) -> None:
    books = Books(books_pool)
    await books.post("block_credit", H1, {BLOCK_REWARDS: -1000, "alice": 1000})
    async with books_pool.acquire() as conn:
        # An unbalanced transaction, written past the Python check.
        with pytest.raises(asyncpg.CheckViolationError, match="does not balance"):
            await conn.fetchval("SELECT post_journal('payout', 'k1', ARRAY['alice', '@paid'], ARRAY[-10, 9]::bigint[])")
        # More than an account holds.
        with pytest.raises(asyncpg.CheckViolationError, match="balance_not_negative"):
            await conn.fetchval("SELECT post_journal('payout', 'k2', ARRAY['alice', '@paid'], "
                                "ARRAY[-1001, 1001]::bigint[])")
        for statement in ("UPDATE entries SET amount_msat = 1", "DELETE FROM entries", "DELETE FROM journal",
                          "UPDATE journal SET ref = 'x'", "TRUNCATE entries", "TRUNCATE journal CASCADE"):
            with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
                await conn.execute(statement)
        with pytest.raises(asyncpg.RestrictViolationError, match="only through journal entries"):
            await conn.execute("UPDATE accounts SET balance_msat = 5 WHERE name = 'alice'")
        with pytest.raises(asyncpg.RestrictViolationError, match="only through journal entries"):
            await conn.execute("INSERT INTO accounts (name, balance_msat) VALUES ('mallory', 5)")
        with pytest.raises(asyncpg.RestrictViolationError, match="never deleted"):
            await conn.execute("DELETE FROM accounts WHERE name = 'alice'")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.fetchval("SELECT post_journal('bogus', 'k3', ARRAY['alice', '@paid'], ARRAY[-1, 1]::bigint[])")
    with pytest.raises(BooksError, match="add up to 1 msat"):
        await books.post("payout", "k4", {"alice": -10, "@paid": 11})
    assert await books.balances() == {"alice": 1000}
    assert await books.inconsistencies() == {}


async def test_counter_accounts_may_go_negative_and_a_miner_may_not(books_pool: asyncpg.Pool) -> None:
    rows = {r["name"]: r["overdraft"] for r in await books_pool.fetch("SELECT name, overdraft FROM accounts")}
    assert rows == {"@block_rewards": True, "@pps": True, "@orphan_losses": True, "@opening": True,
                    "@payouts_in_flight": False, "@paid": False}
    books = Books(books_pool)
    await books.post("block_credit", H1, {BLOCK_REWARDS: -5, "bob": 5})
    with pytest.raises(asyncpg.CheckViolationError):
        await books.post("block_credit", "h2", {"bob": -6, "carol": 6})
    assert await books.balance("bob") == 5
