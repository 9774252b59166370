"""Matured and orphaned blocks: credits computed from Redis, written to the books exactly once.

The order makes a crash between the two stores harmless: the books first (keyed by the block hash, so a
second attempt writes nothing), then the block's status in Redis. A crash after the books' commit leaves
the block "pending" in Redis; the next pass recomputes the same credits (the PPLNS window is frozen per
block), finds them already in the books, and only moves the status. PostgreSQL down: the block stays
pending and the watcher tries again on its next pass.
"""

from __future__ import annotations

from pool.money.books import Books
from pool.shares.payouts import PayoutEngine


class PostgresBlockBooks:
    """The BlockWatcher's money side (pool.shares.blocks.BlockBooks) on the PostgreSQL books."""

    def __init__(self, engine: PayoutEngine, books: Books) -> None:
        self.engine = engine
        self.books = books

    async def credit_block(self, block_hash: str, confirmations: int, now: float | None = None) -> bool:
        credits = await self.engine.scheme_credits(block_hash)
        if credits is None:
            return False
        await self.books.credit_block(block_hash, credits)
        return await self.engine.mark_block(block_hash, "pending", "confirmed", confirmations, now)

    async def orphan_block(self, block_hash: str, confirmations: int, now: float | None = None) -> bool:
        status = (await self.engine.block_fields(block_hash)).get("status")
        if status not in ("pending", "confirmed"):
            return False
        # Also for "pending": a crash may have left it credited in the books but not yet marked.
        await self.books.reverse_block(block_hash)
        return await self.engine.mark_block(block_hash, status, "orphaned", confirmations, now)
