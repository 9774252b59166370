"""PPS/FPPS per-share credits: from the share ledger's Redis outbox to the books, exactly once per batch.

With the books in PostgreSQL the share ledger does not touch balances: each batch of shares leaves one
outbox entry (its batch id, the msat per account) in the same atomic step that counts the shares. This
mover posts each entry as one journal transaction keyed by the batch id, drawn from @pps, and only then
deletes it from the outbox; a crash in between finds the batch already in the books and just deletes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec

from pool.money.books import PPS_SOURCE, Books
from pool.shares.keys import Keys
from pool.shares.redis_conn import RedisClient, text

log = logging.getLogger(__name__)


class PerShareCredits:
    def __init__(self, client: Callable[[], RedisClient], keys: Keys, books: Books, interval_s: float,
                 batch: int = 100) -> None:
        self._client = client
        self.keys = keys
        self.books = books
        self.interval_s = interval_s
        self.batch = batch
        self.moved = 0
        self.last_error = ""

    async def move_once(self) -> int:
        """Moves every entry waiting in the outbox; returns how many batches were new to the books."""
        client = self._client()
        new = 0
        while True:
            items = await client.xrange(self.keys.pps_outbox, count=self.batch)
            if not items:
                return new
            for entry_id, fields in items:
                f = {text(k): text(v) for k, v in fields.items()}
                credits = {a: int(m) for a, m in msgspec.json.decode(f["credits"]).items()}
                total = sum(credits.values())
                if total > 0 and await self.books.post("pps_credit", f["ref"], {**credits, PPS_SOURCE: -total},
                                                       f["kind"]):
                    new += 1
                    self.moved += 1
                await client.xdel(self.keys.pps_outbox, entry_id)

    async def run(self) -> None:
        while True:
            try:
                await self.move_once()
                self.last_error = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or PostgreSQL down: the outbox keeps them; try again later
                self.last_error = repr(exc)
                log.warning("per-share credits not moved to the books yet: %r", exc)
            await asyncio.sleep(self.interval_s)
