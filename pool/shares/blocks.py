"""Found blocks: following their confirmations on the node, maturing and orphaning them.

Status: pending (found, fewer than the maturity confirmations), confirmed (matured: credits written),
orphaned (left the main chain: a credited block's credits reversed). The node is reached through an
injected `confirmations(block_hash) -> int` (Bitcoin Core's getblockheader "confirmations": -1 when
the block is not on the main chain), so this package never imports pool.chain.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from pool.config.ledger import LedgerConfig, PayoutConfig
from pool.shares.journal import BlockFound
from pool.shares.keys import Keys
from pool.shares.payouts import PayoutEngine
from pool.shares.redis_conn import RedisClient, text
from pool.shares.redis_ops import RedisOp

log = logging.getLogger(__name__)

Confirmations = Callable[[str], Awaitable[int]]


class BlockBooks(Protocol):
    """Where a block's money goes when it matures or leaves the chain (the PostgreSQL books in
    pool.money, or none in SOLO). Both return False when the block was not in the expected status."""

    async def credit_block(self, block_hash: str, confirmations: int, now: float | None = None) -> bool: ...

    async def orphan_block(self, block_hash: str, confirmations: int, now: float | None = None) -> bool: ...


class NoBooks:
    """SOLO without a database: the coinbase paid the finder, so a block keeps no money anywhere and only
    its status moves (a pool that keeps balances cannot start without money.dsn: pool.config)."""

    def __init__(self, payouts: PayoutEngine) -> None:
        self.payouts = payouts

    async def credit_block(self, block_hash: str, confirmations: int, now: float | None = None) -> bool:
        return await self.payouts.mark_block(block_hash, "pending", "confirmed", confirmations, now)

    async def orphan_block(self, block_hash: str, confirmations: int, now: float | None = None) -> bool:
        status = (await self.payouts.block_fields(block_hash)).get("status")
        if status not in ("pending", "confirmed"):
            return False
        return await self.payouts.mark_block(block_hash, status, "orphaned", confirmations, now)


class BlockInfo(BlockFound, frozen=True, kw_only=True):
    """A found block as the ledger follows it on the chain."""

    status: str
    confirmations: int


class BlockChange(msgspec.Struct, frozen=True, kw_only=True):
    block_hash: str
    old_status: str
    new_status: str
    confirmations: int


class RefusedBlock(msgspec.Struct, frozen=True, kw_only=True):
    """A block candidate no node took (refused, or its submission failed), on any pool process. Kept in
    Redis (through the ledger's journaled batches) so the blocks list and the alerts see every process's."""

    block_hash: str
    height: int
    account: str
    worker: str
    node: str                  # the pool process that found it
    found_at: float
    reward_sat: int            # what the coinbase paid (0 when the block was not even assembled)
    reason: str                # the node's word ("bad-txnmrklroot") or why it was never submitted


_refused_encoder = msgspec.json.Encoder()
_refused_decoder = msgspec.json.Decoder(RefusedBlock)


def refused_ops(keys: Keys, block: RefusedBlock, keep: int) -> list[RedisOp]:
    """One sorted set by found_at, the newest `keep` kept. A member is the block's JSON: re-applying
    the same candidate adds nothing."""
    return [RedisOp("ZADD", keys.refused_blocks, (repr(block.found_at), _refused_encoder.encode(block).decode())),
            RedisOp("ZREMRANGEBYRANK", keys.refused_blocks, (0, -keep - 1))]


async def list_refused(client: RedisClient, keys: Keys, limit: int) -> list[RefusedBlock]:
    """Newest found first; a member that does not decode (another version's) is skipped."""
    out = []
    for raw in await client.zrevrange(keys.refused_blocks, 0, max(0, limit - 1)):
        try:
            out.append(_refused_decoder.decode(raw))
        except msgspec.DecodeError:
            log.warning("refused block record not readable: %.80r", raw)
    return out


def block_info(fields: dict[str, str]) -> BlockInfo:
    return BlockInfo(
        block_hash=fields["hash"], height=int(fields["height"]), account=fields["account"],
        worker=fields["worker"], node=fields.get("node", ""), found_at=float(fields["found_at"]),
        reward_sat=int(fields["reward_sat"]), network_difficulty=float(fields["network_difficulty"]),
        scheme=fields["scheme"], status=fields.get("status", "pending"),
        confirmations=int(fields.get("confirmations", 0)),
    )


async def list_blocks(client: RedisClient, keys: Keys, limit: int = 100) -> list[BlockInfo]:
    """Newest first."""
    hashes = await client.zrevrange(keys.blocks, 0, limit - 1)
    out = []
    for h in hashes:
        raw = await client.hgetall(keys.block(text(h)))
        if raw:
            out.append(block_info({text(k): text(v) for k, v in raw.items()}))
    return out


class BlockWatcher:
    def __init__(self, client: Callable[[], RedisClient], keys: Keys, payouts: PayoutEngine,
                 ledger_config: LedgerConfig, payout_config: PayoutConfig,
                 confirmations: Confirmations) -> None:
        self._client = client
        self.keys = keys
        self.payouts = payouts
        self.ledger_config = ledger_config
        self.payout_config = payout_config
        self.confirmations = confirmations
        self.last_poll_at = 0.0
        self.last_error = ""
        # The money side of maturing and orphaning; the app points it at the PostgreSQL books.
        self.books: BlockBooks = NoBooks(payouts)

    async def poll_once(self, now: float | None = None) -> list[BlockChange]:
        """One pass over the open blocks. Node errors skip a block until the next pass."""
        now = time.time() if now is None else now
        client = self._client()
        for block_hash in await self.payouts.pending_snapshots():
            await self.payouts.snapshot_window(block_hash)
        changes: list[BlockChange] = []
        maturity = self.payout_config.maturity_confirmations
        for raw_hash in await client.smembers(self.keys.open_blocks):
            block_hash = text(raw_hash)
            fields = await self.payouts.block_fields(block_hash)
            status = fields.get("status", "pending")
            try:
                confs = int(await self.confirmations(block_hash))
            except Exception as exc:  # the node is down or does not answer: try again next pass
                self.last_error = f"confirmations({block_hash}): {exc!r}"
                log.warning("block watcher: %s", self.last_error)
                continue
            if not (confs < 0 or (status == "pending" and confs >= maturity)):
                await client.hset(self.keys.block(block_hash), "confirmations", confs)
                if status != "pending" and confs >= self.ledger_config.block_watch_confirmations:
                    await client.srem(self.keys.open_blocks, block_hash)
                continue
            new_status = "orphaned" if confs < 0 else "confirmed"
            move = self.books.orphan_block if confs < 0 else self.books.credit_block
            try:
                changed = await move(block_hash, confs, now)
            except Exception as exc:  # the books are unreachable: this block waits for the next pass
                self.last_error = f"books for block {block_hash}: {exc!r}"
                log.warning("block watcher: %s", self.last_error)
                continue
            if changed:
                changes.append(BlockChange(block_hash=block_hash, old_status=status, new_status=new_status,
                                           confirmations=confs))
                log.info("block %s: %s -> %s at %d confirmations", block_hash, status, new_status, confs)
        self.last_poll_at = now
        return changes

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: the ledger's journal covers shares; retry later
                self.last_error = repr(exc)
                log.warning("block watcher pass failed: %r", exc)
            await asyncio.sleep(self.ledger_config.block_poll_interval_s)
