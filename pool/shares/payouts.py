"""A found block's round in Redis: its frozen PPLNS window, the credits its scheme gives, its status;
and the payout batch types, export files and sendmany helpers the PostgreSQL books (pool.money) use.

Money itself (credits, balances, payouts) lives only in the PostgreSQL books; older versions kept a
ledger here in Redis, which `geostratum payouts migrate-from-redis` (pool.money.redis_import) reads.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from pool.bitcoin.amount import btc_amount
from pool.config.ledger import PayoutConfig
from pool.shares import lua
from pool.shares.keys import Keys
from pool.shares.redis_conn import RedisClient, Script, text
from pool.shares.schemes import block_credits, pplns_window

log = logging.getLogger(__name__)

# async rpc(method, params) -> result. A JSON-RPC error reply must raise an exception carrying an
# integer `code` attribute (definite: the wallet refused); any other exception is ambiguous.
WalletRpc = Callable[[str, list[Any]], Awaitable[Any]]

COMMENT_PREFIX = "geostratum-payout:"


class PayoutError(Exception):
    pass


class WalletRpcError(Exception):
    """A JSON-RPC error reply from the wallet (the request was answered, nothing was sent)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"wallet RPC error {code}: {message}")
        self.code = code
        self.message = message


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    address: str
    amount_sat: int


class PayoutBatch(msgspec.Struct, kw_only=True):
    key: str                 # the idempotency key (also the wallet comment marker)
    created_at: float
    payments: list[Payment]
    total_sat: int
    status: str = "created"  # created, sending, sent, cancelled
    txid: str = ""
    attempts: int = 0
    last_error: str = ""


class PayoutEngine:
    def __init__(self, client: Callable[[], RedisClient], keys: Keys, config: PayoutConfig) -> None:
        self._client = client
        self.keys = keys
        self.config = config
        self._snapshot = Script(lua.PPLNS_SNAPSHOT)
        self._transition = Script(lua.BLOCK_TRANSITION)

    @property
    def client(self) -> RedisClient:
        return self._client()

    # -- PPLNS windows ------------------------------------------------------------------------
    async def snapshot_window(self, block_hash: str) -> dict[str, float] | None:
        """Freeze the last-N window ending at the block's slice (idempotent). None if not yet applied."""
        keys = self.keys
        client = self.client
        end = await client.hget(keys.pplns_block_slices, block_hash)
        if end is None:
            existing = await client.hgetall(keys.pplns_window(block_hash))
            if not existing:
                return None
            return {text(k): float(v) for k, v in existing.items() if text(k) != "@window"}
        netdiff = float(await client.hget(keys.block(block_hash), "network_difficulty") or 0)
        n = self.config.pplns_factor * netdiff
        first = int(await client.get(keys.pplns_base + ":first") or 1)
        slices: list[tuple[float, dict[str, float]]] = []
        covered = 0.0
        current = int(end)
        while current >= first and covered < n:
            ids = list(range(current, max(first, current - 256) - 1, -1))
            totals = await client.hmget(keys.pplns_slice_totals, [str(i) for i in ids])
            wanted = []
            for slice_id, total in zip(ids, totals, strict=True):
                t = float(total or 0)
                if covered >= n:
                    break
                wanted.append((slice_id, t))
                covered += t
            async with client.pipeline(transaction=False) as pipe:
                for slice_id, _ in wanted:
                    pipe.hgetall(keys.pplns_slice(slice_id))
                contents = await pipe.execute()
            for (_, t), content in zip(wanted, contents, strict=True):
                slices.append((t, {text(k): float(v) for k, v in content.items()}))
            current = ids[-1] - 1
        window = pplns_window(slices, n)
        args: list[str] = [block_hash, repr(n)]
        for account, diff in sorted(window.items()):
            args += [account, repr(diff)]
        await self._snapshot(client, [keys.pplns_window(block_hash), keys.pplns_base], args)
        stored = await client.hgetall(keys.pplns_window(block_hash))
        return {text(k): float(v) for k, v in stored.items() if text(k) != "@window"}

    async def pending_snapshots(self) -> list[str]:
        return [text(h) for h in await self.client.hkeys(self.keys.pplns_block_slices)]

    # -- block credits ------------------------------------------------------------------------
    async def scheme_credits(self, block_hash: str) -> dict[str, int] | None:
        """The credits (msat per account) a pending block's scheme gives; None if it is not pending."""
        info = await self.block_fields(block_hash)
        if info.get("status") != "pending":
            return None
        scheme = info.get("scheme", self.config.scheme)
        window: dict[str, float] = {}
        if scheme == "pplns":
            snap = await self.snapshot_window(block_hash)
            if snap is None:
                raise PayoutError(f"block {block_hash}: PPLNS window not available yet")
            window = snap
        return block_credits(scheme, int(info["reward_sat"]), info["account"], window,
                             self.config.fee_percent, self.config.pool_account)

    async def mark_block(self, block_hash: str, expected: str, new: str, confirmations: int,
                         now: float | None = None) -> bool:
        """Moves the block's status only (its money is in the PostgreSQL books). False if it was not
        in `expected`."""
        now = time.time() if now is None else now
        close = "1" if new == "orphaned" else "0"
        return bool(await self._transition(self.client, [self.keys.block(block_hash), self.keys.open_blocks],
                                           [expected, new, block_hash, repr(now), confirmations, close]))

    async def block_fields(self, block_hash: str) -> dict[str, str]:
        raw = await self.client.hgetall(self.keys.block(block_hash))
        return {text(k): text(v) for k, v in raw.items()}


def export_batch(batch: PayoutBatch, directory: str | Path) -> tuple[Path, Path]:
    """Writes payout-<key>.json and payout-<key>.csv (account, address, amount_sat, amount_btc)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"payout-{batch.key}.json"
    csv_path = out / f"payout-{batch.key}.csv"
    json_path.write_bytes(msgspec.json.format(msgspec.json.encode(batch)))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["account", "address", "amount_sat", "amount_btc"])
    for p in batch.payments:
        writer.writerow([p.account, p.address, p.amount_sat, btc_amount(p.amount_sat)])
    csv_path.write_text(buffer.getvalue())
    return json_path, csv_path


def sendmany_params(batch: PayoutBatch, minconf: int) -> list[Any]:
    """One output per address (amounts summed), the batch key in the comment (how a retry finds it)."""
    totals: dict[str, int] = {}
    for p in batch.payments:
        totals[p.address] = totals.get(p.address, 0) + p.amount_sat
    amounts = {address: btc_amount(sat) for address, sat in totals.items()}
    return ["", amounts, minconf, COMMENT_PREFIX + batch.key]


async def find_wallet_tx(key: str, rpc: WalletRpc, depth: int = 1000) -> str:
    """The txid of the wallet transaction whose comment carries this batch key, or ""."""
    marker = COMMENT_PREFIX + key
    entries = await rpc("listtransactions", ["*", depth, 0, True])
    for entry in entries or []:
        if entry.get("comment") == marker and entry.get("category") == "send":
            return str(entry["txid"])
    return ""
