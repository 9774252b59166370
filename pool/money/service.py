"""The books as one component of a running pool: a lazy asyncpg pool, the watcher's money side, and a
snapshot for /metrics. PostgreSQL being down at start or later stops nothing but the money: blocks wait
as pending and are credited when it returns."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from pool.aio import cancel_and_wait
from pool.config import Config
from pool.money.books import Books, BooksSnapshot
from pool.money.credits import PostgresBlockBooks
from pool.money.db import open_pool, redacted
from pool.money.payments import Payouts
from pool.money.pps import PerShareCredits
from pool.money.schema import current_revision, head_revision
from pool.shares.ledger import Ledger

log = logging.getLogger(__name__)


class MoneyService:
    def __init__(self, config: Config, pool: asyncpg.Pool) -> None:
        self.config = config
        self.pool = pool
        self.books = Books(pool, config.payouts.pool_account)
        self.payouts = Payouts(pool, config.payouts.sendmany_minconf)
        self.last_error = ""
        self.per_share: PerShareCredits | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, config: Config, application_name: str = "geostratum") -> MoneyService:
        """Never connects here (min_size 0): the first use does, and a failure is that use's error."""
        return cls(config, await open_pool(config.money, application_name, min_size=0))

    def attach(self, ledger: Ledger) -> None:
        """Before ledger.start(): matured blocks are credited in these books instead of the Redis ledger,
        and PPS/FPPS per-share credits reach them through the ledger's outbox (Keys.pps_outbox)."""
        if ledger.watcher is not None:
            ledger.watcher.books = PostgresBlockBooks(ledger.payouts, self.books)
        if self.config.payouts.scheme in ("pps", "fpps"):
            self.per_share = PerShareCredits(lambda: ledger.client, ledger.keys, self.books,
                                             self.config.money.move_interval_s)

    def start(self) -> None:
        if self.per_share is not None and self._task is None:
            self._task = asyncio.create_task(self.per_share.run(), name="books-per-share-credits")

    async def check_schema(self) -> bool:
        """Logs (never raises) when the database is unreachable or not migrated."""
        try:
            async with self.pool.acquire() as conn:
                revision = await current_revision(conn)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            self.last_error = f"books' database unreachable ({redacted(self.config.money.dsn)}): {exc}"
            log.warning("%s; blocks stay pending until it answers", self.last_error)
            return False
        if revision != head_revision():
            self.last_error = (f"books' schema is at {revision or 'nothing'}, this version needs {head_revision()}: "
                               "run `geostratum db migrate`")
            log.error("%s", self.last_error)
            return False
        return True

    async def snapshot(self) -> BooksSnapshot | None:
        try:
            snap = await self.books.snapshot()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            self.last_error = repr(exc)
            return None
        self.last_error = ""
        return snap

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        await self.pool.close()
