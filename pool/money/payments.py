"""Payout batches in the books: created -> sending -> sent -> confirmed, or created -> cancelled.

`send` commits the batch as "sending" before it calls the wallet, and a batch found "sending" (a crash,
a lost reply, another process) is first looked up in the wallet by the key in its comment: only when the
wallet has no such transaction, and the last attempt is older than `resend_after_s`, is it sent again.
Two processes sending the same batch race on one conditional UPDATE; only the winner calls the wallet.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from pool.money.books import IN_FLIGHT, PAID, post
from pool.shares.payouts import (
    Payment,
    PayoutBatch,
    PayoutError,
    WalletRpc,
    find_wallet_tx,
    sendmany_params,
)
from pool.shares.schemes import MSAT_PER_SAT

CREATE_LOCK = 0x6773_7061  # pg_advisory_xact_lock key: one batch is built at a time ("gspa")


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Payouts:
    def __init__(self, pool: asyncpg.Pool, minconf: int = 1) -> None:
        self.pool = pool
        self.minconf = minconf

    # -- creating and cancelling ------------------------------------------------------------------
    async def create_batch(self, threshold_sat: int, now: float | None = None,
                           address_for: Callable[[str], str | None] | None = None) -> PayoutBatch | None:
        """Debits every miner account at or above the threshold (whole satoshis; the msat remainder stays)
        into one batch, in one transaction. None if nobody qualifies."""
        now = time.time() if now is None else now
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CREATE_LOCK)
            rows = await conn.fetch(
                "SELECT name, balance_msat FROM accounts WHERE name NOT LIKE '@%' AND balance_msat >= $1 "
                "ORDER BY name FOR UPDATE", threshold_sat * MSAT_PER_SAT)
            payments = []
            for row in rows:
                address = row["name"] if address_for is None else address_for(row["name"])
                if address:
                    payments.append(Payment(account=row["name"], address=address,
                                            amount_sat=row["balance_msat"] // MSAT_PER_SAT))
            if not payments:
                return None
            batch = PayoutBatch(key=uuid.uuid4().hex, created_at=now, payments=payments,
                                total_sat=sum(p.amount_sat for p in payments))
            await conn.execute("INSERT INTO payout_batches (key, total_sat, created_at) VALUES ($1, $2, $3)",
                               batch.key, batch.total_sat, _at(now))
            await conn.executemany(
                "INSERT INTO payout_payments (batch_key, account, address, amount_sat) VALUES ($1, $2, $3, $4)",
                [(batch.key, p.account, p.address, p.amount_sat) for p in payments])
            amounts = {p.account: -p.amount_sat * MSAT_PER_SAT for p in payments}
            amounts[IN_FLIGHT] = batch.total_sat * MSAT_PER_SAT
            await post(conn, "payout", batch.key, amounts, f"{len(payments)} payments")
        return batch

    async def cancel_batch(self, key: str) -> bool:
        """Credits a never-sent batch back (a new transaction). False if it is not in status created."""
        async with self.pool.acquire() as conn, conn.transaction():
            updated = await conn.fetchval(
                "UPDATE payout_batches SET status = 'cancelled' WHERE key = $1 AND status = 'created' RETURNING key",
                key)
            if updated is None:
                await self._require(conn, key)
                return False
            rows = await conn.fetch("SELECT account, amount_sat FROM payout_payments WHERE batch_key = $1", key)
            amounts = {r["account"]: r["amount_sat"] * MSAT_PER_SAT for r in rows}
            amounts[IN_FLIGHT] = -sum(amounts.values())
            await post(conn, "payout_cancel", key, amounts)
        return True

    # -- reading ----------------------------------------------------------------------------------
    @staticmethod
    async def _require(conn: asyncpg.Connection, key: str) -> asyncpg.Record:
        row = await conn.fetchrow(
            "SELECT key, status, total_sat, extract(epoch FROM created_at) AS created, attempts, "
            "coalesce(extract(epoch FROM attempt_at), 0) AS attempt, txid, last_error "
            "FROM payout_batches WHERE key = $1", key)
        if row is None:
            raise PayoutError(f"no payout batch {key!r}")
        return row

    async def batch(self, key: str) -> PayoutBatch:
        async with self.pool.acquire() as conn:
            row = await self._require(conn, key)
            payments = await conn.fetch(
                "SELECT account, address, amount_sat FROM payout_payments WHERE batch_key = $1 ORDER BY account", key)
        return self._batch(row, payments)

    @staticmethod
    def _batch(row: asyncpg.Record, payments: list[asyncpg.Record]) -> PayoutBatch:
        return PayoutBatch(
            key=row["key"], created_at=float(row["created"]), total_sat=row["total_sat"], status=row["status"],
            txid=row["txid"] or "", attempts=row["attempts"], last_error=row["last_error"],
            payments=[Payment(account=p["account"], address=p["address"], amount_sat=p["amount_sat"])
                      for p in payments])

    async def batches(self, limit: int = 100) -> list[PayoutBatch]:
        """Newest first."""
        keys = await self.pool.fetch("SELECT key FROM payout_batches ORDER BY created_at DESC, key LIMIT $1", limit)
        return [await self.batch(r["key"]) for r in keys]

    # -- sending ----------------------------------------------------------------------------------
    async def send_batch(self, key: str, rpc: WalletRpc, resend_after_s: float = 60.0,
                         now: float | None = None) -> str:
        """Pays a batch with one sendmany, at most once; returns the txid."""
        now = time.time() if now is None else now
        batch = await self.batch(key)
        if batch.status in ("sent", "confirmed"):
            return batch.txid
        if batch.status == "cancelled":
            raise PayoutError(f"payout batch {key} was cancelled")
        async with self.pool.acquire() as conn:
            row = await self._require(conn, key)
        if batch.status == "sending":
            # A crash, a lost reply or another process: the wallet says whether the payment went out.
            txid = await find_wallet_tx(key, rpc)
            if txid:
                await self._mark_sent(key, txid, now)
                return txid
            if now - float(row["attempt"]) < resend_after_s:
                raise PayoutError(f"payout batch {key}: last attempt {now - float(row['attempt']):.0f}s ago has no "
                                  f"wallet transaction yet; retry after {resend_after_s:.0f}s")
        # Claim the send in a committed transaction: only one process gets the row in this state.
        claimed = await self.pool.fetchval(
            "UPDATE payout_batches SET status = 'sending', attempts = attempts + 1, attempt_at = $2 "
            "WHERE key = $1 AND status = $3 AND attempts = $4 RETURNING key",
            key, _at(now), row["status"], row["attempts"])
        if claimed is None:
            raise PayoutError(f"payout batch {key} is being sent by another process; run send again to check")
        try:
            txid = str(await rpc("sendmany", sendmany_params(batch, self.minconf)))
        except Exception as exc:
            if isinstance(getattr(exc, "code", None), int):
                # The wallet answered with an error: nothing was sent, the batch can be retried.
                await self.pool.execute("UPDATE payout_batches SET status = 'created', last_error = $2 "
                                        "WHERE key = $1 AND status = 'sending'", key, str(exc))
            else:
                await self.pool.execute("UPDATE payout_batches SET last_error = $2 WHERE key = $1",
                                        key, f"ambiguous: {exc!r}")
            raise
        await self._mark_sent(key, txid, now)
        return txid

    async def _mark_sent(self, key: str, txid: str, now: float) -> None:
        """sending -> sent with the txid, and the batch's amounts move from in flight to paid."""
        async with self.pool.acquire() as conn, conn.transaction():
            total = await conn.fetchval(
                "UPDATE payout_batches SET status = 'sent', txid = $2, sent_at = $3, last_error = '' "
                "WHERE key = $1 AND status = 'sending' RETURNING total_sat", key, txid, _at(now))
            if total is None:
                return  # another process recorded it first
            msat = total * MSAT_PER_SAT
            await post(conn, "payout_sent", key, {IN_FLIGHT: -msat, PAID: msat}, txid)

    async def confirm_sent(self, rpc: WalletRpc, min_confirmations: int, depth: int = 1000) -> list[str]:
        """sent -> confirmed for batches whose wallet transaction has `min_confirmations`; their keys."""
        sent = {r["txid"]: r["key"] for r in await self.pool.fetch(
            "SELECT key, txid FROM payout_batches WHERE status = 'sent'")}
        if not sent:
            return []
        confirmed = []
        for entry in await rpc("listtransactions", ["*", depth, 0, True]) or []:
            key = sent.get(str(entry.get("txid")))
            if key and entry.get("category") == "send" and int(entry.get("confirmations", 0)) >= min_confirmations:
                done = await self.pool.fetchval(
                    "UPDATE payout_batches SET status = 'confirmed', confirmed_at = now() "
                    "WHERE key = $1 AND status = 'sent' RETURNING key", key)
                if done:
                    confirmed.append(key)
                    sent.pop(str(entry.get("txid")))
        return confirmed
