"""The payout ledger: append-only entries in a Redis stream, balances, block credits and reversals,
payout batches (export and idempotent sendmany).

Every entry is a new stream item (kind, account, msat, ref, ts); a balance is the sum of an
account's entries (the balances hash is maintained in the same atomic step, and `verify()`
recomputes it from the entries). Nothing is ever edited: an orphaned block gets "reversal" entries,
a paid batch "payout" entries, a cancelled batch "payout_cancel" entries.
"""

from __future__ import annotations

import csv
import io
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from pool.config.ledger import PayoutConfig
from pool.shares import lua
from pool.shares.keys import Keys
from pool.shares.redis_conn import RedisClient, Script, text
from pool.shares.schemes import MSAT_PER_SAT, block_credits, pplns_window

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


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str        # pps, fpps, credit, reversal, payout, payout_cancel
    account: str
    msat: int
    ref: str         # batch id, block hash or payout key
    ts: float


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


def btc_amount(sat: int) -> str:
    """Exact decimal string for Bitcoin Core (no float rounding)."""
    return f"{sat // 100_000_000}.{sat % 100_000_000:08d}"


class PayoutEngine:
    def __init__(self, client: Callable[[], RedisClient], keys: Keys, config: PayoutConfig) -> None:
        self._client = client
        self.keys = keys
        self.config = config
        self._snapshot = Script(lua.PPLNS_SNAPSHOT)
        self._transition = Script(lua.BLOCK_TRANSITION)
        self._create = Script(lua.PAYOUT_CREATE)
        self._cancel = Script(lua.PAYOUT_CANCEL)

    @property
    def client(self) -> RedisClient:
        return self._client()

    # -- reading ------------------------------------------------------------------------------
    async def balances(self) -> dict[str, int]:
        raw = await self.client.hgetall(self.keys.balances)
        return {text(k): int(v) for k, v in raw.items() if int(v) != 0}

    async def balance(self, account: str) -> int:
        return int(await self.client.hget(self.keys.balances, account) or 0)

    async def entries(self, account: str | None = None, count: int = 1000) -> list[LedgerEntry]:
        """Newest first."""
        items = await self.client.xrevrange(self.keys.ledger, count=count if account is None else None)
        out = []
        for entry_id, fields in items:
            entry = self._entry(entry_id, fields)
            if account is None or entry.account == account:
                out.append(entry)
                if len(out) >= count:
                    break
        return out

    @staticmethod
    def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> LedgerEntry:
        f = {text(k): text(v) for k, v in fields.items()}
        return LedgerEntry(id=text(entry_id), kind=f["kind"], account=f["account"], msat=int(f["msat"]),
                           ref=f["ref"], ts=float(f["ts"]))

    async def sum_entries(self) -> dict[str, int]:
        """Balances recomputed from every entry (the definition of a balance)."""
        totals: dict[str, int] = {}
        last = "-"
        while True:
            items = await self.client.xrange(self.keys.ledger, min=last, count=5000)
            if last != "-":
                items = items[1:]
            if not items:
                break
            for entry_id, fields in items:
                entry = self._entry(entry_id, fields)
                totals[entry.account] = totals.get(entry.account, 0) + entry.msat
            last = text(items[-1][0])
        return {a: v for a, v in totals.items() if v != 0}

    async def verify(self) -> dict[str, tuple[int, int]]:
        """Accounts whose balance differs from the sum of their entries: {account: (balance, sum)}."""
        balances = await self.balances()
        sums = await self.sum_entries()
        return {a: (balances.get(a, 0), sums.get(a, 0)) for a in set(balances) | set(sums)
                if balances.get(a, 0) != sums.get(a, 0)}

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
        """Moves the block's status only (its money is in the books elsewhere). False if it was not
        in `expected`."""
        now = time.time() if now is None else now
        close = "1" if new == "orphaned" else "0"
        return bool(await self._transition(self.client, self._transition_keys(block_hash),
                                           [expected, new, "status", block_hash, repr(now), confirmations, close]))

    async def credit_block(self, block_hash: str, confirmations: int, now: float | None = None) -> bool:
        """pending -> confirmed, writing the scheme's credits. False if it was not pending."""
        now = time.time() if now is None else now
        credits = await self.scheme_credits(block_hash)
        if credits is None:
            return False
        pairs = [x for account in sorted(credits) for x in (account, credits[account])]
        return bool(await self._transition(self.client, self._transition_keys(block_hash),
                                           ["pending", "confirmed", "credit", block_hash, repr(now),
                                            confirmations, "0", *pairs]))

    async def orphan_block(self, block_hash: str, confirmations: int, now: float | None = None) -> bool:
        """-> orphaned. A credited block gets reversal entries (new ones; the credits stay in history)."""
        now = time.time() if now is None else now
        info = await self.block_fields(block_hash)
        status = info.get("status")
        if status == "pending":
            return bool(await self._transition(self.client, self._transition_keys(block_hash),
                                               ["pending", "orphaned", "reversal", block_hash, repr(now),
                                                confirmations, "1"]))
        if status == "confirmed":
            credited = await self.client.hgetall(self.keys.credits(block_hash))
            pairs = [x for k in sorted(credited) for x in (text(k), -int(credited[k]))]
            return bool(await self._transition(self.client, self._transition_keys(block_hash),
                                               ["confirmed", "orphaned", "reversal", block_hash, repr(now),
                                                confirmations, "1", *pairs]))
        return False

    def _transition_keys(self, block_hash: str) -> list[str]:
        k = self.keys
        return [k.block(block_hash), k.ledger, k.balances, k.credits(block_hash), k.open_blocks]

    async def block_fields(self, block_hash: str) -> dict[str, str]:
        raw = await self.client.hgetall(self.keys.block(block_hash))
        return {text(k): text(v) for k, v in raw.items()}

    # -- payout batches -----------------------------------------------------------------------
    async def create_batch(self, threshold_sat: int | None = None, now: float | None = None,
                           address_for: Callable[[str], str | None] | None = None) -> PayoutBatch | None:
        """Debits every account at or above the threshold into one batch (None if nobody qualifies).

        `address_for(account)` maps an account to its payout address (default: the account is the
        address); accounts it maps to None are skipped."""
        now = time.time() if now is None else now
        threshold = self.config.threshold_sat if threshold_sat is None else threshold_sat
        payments = []
        for account, msat in sorted((await self.balances()).items()):
            if account.startswith("@"):
                continue
            sat = msat // MSAT_PER_SAT
            if sat < threshold:
                continue
            address = account if address_for is None else address_for(account)
            if not address:
                continue
            payments.append(Payment(account=account, address=address, amount_sat=sat))
        if not payments:
            return None
        batch = PayoutBatch(key=uuid.uuid4().hex, created_at=now, payments=payments,
                            total_sat=sum(p.amount_sat for p in payments))
        pairs = [x for p in payments for x in (p.account, p.amount_sat * MSAT_PER_SAT)]
        result = await self._create(self.client, self._batch_keys(batch.key),
                                    [batch.key, repr(now), msgspec.json.encode(batch), *pairs])
        if result == -1:
            raise PayoutError("a balance changed while the batch was built; try again")
        return batch

    def _batch_keys(self, key: str) -> list[str]:
        k = self.keys
        return [k.payout_batch(key), k.payout_batches, k.ledger, k.balances]

    async def batch(self, key: str) -> PayoutBatch:
        raw = await self.client.hgetall(self.keys.payout_batch(key))
        if not raw:
            raise PayoutError(f"no payout batch {key!r}")
        f = {text(k): text(v) for k, v in raw.items()}
        batch = msgspec.json.decode(f["body"], type=PayoutBatch)
        batch.status = f.get("status", batch.status)
        batch.txid = f.get("txid", "")
        batch.attempts = int(f.get("attempts", 0))
        batch.last_error = f.get("last_error", "")
        return batch

    async def batches(self, limit: int = 100) -> list[PayoutBatch]:
        keys = await self.client.zrevrange(self.keys.payout_batches, 0, limit - 1)
        return [await self.batch(text(k)) for k in keys]

    def export_batch(self, batch: PayoutBatch, directory: str | Path | None = None) -> tuple[Path, Path]:
        return export_batch(batch, directory or self.config.export_dir)

    async def cancel_batch(self, key: str, now: float | None = None) -> bool:
        """Credits a never-sent batch back (new entries). False if it is not in status created."""
        now = time.time() if now is None else now
        batch = await self.batch(key)
        pairs = [x for p in batch.payments for x in (p.account, p.amount_sat * MSAT_PER_SAT)]
        return bool(await self._cancel(self.client, self._batch_keys(key), [key, repr(now), *pairs]))

    async def send_batch(self, key: str, rpc: WalletRpc, resend_after_s: float = 60.0,
                         now: float | None = None) -> str:
        """Pays a batch with one sendmany, at most once.

        Before any send the batch is marked "sending" in Redis; a retry of a "sending" batch first
        looks for the wallet transaction carrying the key in its comment, and only sends again when
        none exists and the last attempt is older than `resend_after_s` (a slow first call may
        still be completing in the wallet)."""
        now = time.time() if now is None else now
        batch = await self.batch(key)
        bkey = self.keys.payout_batch(key)
        if batch.status == "sent":
            return batch.txid
        if batch.status == "cancelled":
            raise PayoutError(f"payout batch {key} was cancelled")
        if batch.status == "sending":
            txid = await self.find_wallet_tx(key, rpc)
            if txid:
                await self.client.hset(bkey, mapping={"status": "sent", "txid": txid, "sent_at": repr(now)})
                return txid
            last = float(await self.client.hget(bkey, "attempt_at") or 0)
            if now - last < resend_after_s:
                raise PayoutError(f"payout batch {key}: last attempt {now - last:.0f}s ago has no wallet "
                                  f"transaction yet; retry after {resend_after_s:.0f}s")
        await self.client.hset(bkey, mapping={"status": "sending", "attempt_at": repr(now)})
        await self.client.hincrby(bkey, "attempts", 1)
        try:
            txid = await rpc("sendmany", sendmany_params(batch, self.config.sendmany_minconf))
        except Exception as exc:
            if isinstance(getattr(exc, "code", None), int):
                # The wallet answered with an error: nothing was sent, the batch can be retried.
                await self.client.hset(bkey, mapping={"status": "created", "last_error": str(exc)})
            else:
                await self.client.hset(bkey, "last_error", f"ambiguous: {exc!r}")
            raise
        await self.client.hset(bkey, mapping={"status": "sent", "txid": str(txid), "sent_at": repr(now)})
        return str(txid)

    async def find_wallet_tx(self, key: str, rpc: WalletRpc, depth: int = 1000) -> str:
        return await find_wallet_tx(key, rpc, depth)


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
