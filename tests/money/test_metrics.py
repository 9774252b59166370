"""/metrics gauges for the books, from a real database with known contents."""

from __future__ import annotations

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from pool import config as config_module
from pool.admin.interfaces import MetricsSnapshot
from pool.admin.metrics import render
from pool.admin_wiring.health import books_health
from pool.money.books import PAID, Books, BooksSnapshot
from pool.money.payments import Payouts
from pool.money.service import MoneyService
from tests.support import snapshots

H1 = "00" * 31 + "01"


def scrape(text: str) -> dict[str, float]:
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("geostratum_books")}


def metrics(books: BooksSnapshot | None) -> MetricsSnapshot:
    return snapshots.metrics(books_configured=True, books=books)


async def test_books_gauges_read_the_database(books_dsn: str, books_pool: asyncpg.Pool) -> None:
    books = Books(books_pool)
    await books.credit_block(H1, {"alice": 7_000_000_500, "bob": 3_000_000_000, "@pool": 100_000_000})
    batch = await Payouts(books_pool).create_batch(4_000_000)               # alice only: 7,000,000 sat
    assert batch is not None
    async with books_pool.acquire() as conn, conn.transaction():
        # As Payouts.send_batch records a sent batch (the wallet half is tested in test_payments).
        await conn.execute("UPDATE payout_batches SET status = 'sending', attempt_at = to_timestamp(1000) "
                           "WHERE key = $1", batch.key)
        await conn.execute("UPDATE payout_batches SET status = 'sent', txid = 'ab', sent_at = to_timestamp(1700000000) "
                           "WHERE key = $1", batch.key)
        await conn.fetchval("SELECT post_journal('payout_sent', $1, ARRAY['@payouts_in_flight', $2], "
                            "ARRAY[-7000000000, 7000000000]::bigint[])", batch.key, PAID)
    config = config_module.from_dict({"money": {"dsn": books_dsn}})
    service = await MoneyService.open(config)
    try:
        figures = scrape(render(metrics(await service.snapshot()), admin_requests={}, rate_limited=0))
    finally:
        await service.close()
    assert figures == {
        "geostratum_books_up": 1.0,
        "geostratum_books_unpaid_balance_sat": 3_000_000.5,        # bob 3,000,000 sat + alice's 500 msat
        "geostratum_books_unpaid_accounts": 2.0,
        "geostratum_books_in_flight_sat": 0.0,
        "geostratum_books_paid_sat": 7_000_000.0,
        "geostratum_books_last_payout_timestamp_seconds": 1_700_000_000.0,
        "geostratum_books_last_payout_sat": 7_000_000.0,
        "geostratum_books_consistent": 1.0,
        "geostratum_books_inconsistent_accounts": 0.0,
    }


async def test_books_down_reads_as_up_zero() -> None:
    from tests.support.redis_server import free_port

    config = config_module.from_dict({"money": {"dsn": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
                                                "connect_timeout_s": 2.0}})
    service = await MoneyService.open(config)
    try:
        figures = scrape(render(metrics(await service.snapshot()), admin_requests={}, rate_limited=0))
        health = await books_health(service)
    finally:
        await service.close()
    assert figures == {"geostratum_books_up": 0.0}
    assert not health.ok and health.detail.startswith("not answering:")
    assert "Connect call failed" in service.last_error or "refused" in service.last_error


def test_no_database_no_books_gauges() -> None:
    assert scrape(render(snapshots.metrics(), admin_requests={}, rate_limited=0)) == {}   # no money.dsn
