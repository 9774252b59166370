"""The miner page's credits, payouts and paid-so-far come from the PostgreSQL books when the pool
keeps them: a credited block, a payout batch and its cancellation, as the books hold them."""

from __future__ import annotations

from types import SimpleNamespace

import asyncpg

from pool.admin.miner_types import MinerExtras
from pool.admin_wiring.miner import MinerReader
from pool.money.payments import Payouts
from tests.money.test_payments import ALICE, H1, credited, only_addresses


async def test_payouts_and_paid_so_far_from_the_books(books_pool: asyncpg.Pool) -> None:
    books = await credited(books_pool)
    reader = MinerReader(None, None, None, None, money=SimpleNamespace(books=books))  # type: ignore[arg-type]
    out = MinerExtras()
    await reader._payouts(ALICE, out)
    assert [(p.kind, p.amount_msat, p.ref) for p in out.payouts] == [("block_credit", 60_000_000_123, H1)]
    assert await books.paid_of([ALICE, "nobody"]) == {}             # never paid: absent, shown as 0
    payouts = Payouts(books_pool)
    batch = await payouts.create_batch(1000, address_for=only_addresses)
    assert batch is not None
    out = MinerExtras()
    await reader._payouts(ALICE, out)
    assert [(p.kind, p.amount_msat) for p in out.payouts] == [("payout", -60_000_000_000),
                                                               ("block_credit", 60_000_000_123)]
    # Whole sats go into the batch; the 123 msat stay as balance.
    assert await books.paid_of([ALICE, "nobody"]) == {ALICE: 60_000_000_000}
    assert await payouts.cancel_batch(batch.key)
    out = MinerExtras()
    await reader._payouts(ALICE, out)
    assert await books.paid_of([ALICE]) == {ALICE: 0} and out.payouts[0].kind == "payout_cancel"
