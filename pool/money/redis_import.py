"""`geostratum payouts migrate-from-redis`: the legacy Redis ledger's balances and payout batches moved
into the PostgreSQL books in one transaction, then proven equal account by account.

What moves: every balance (one "opening_balance" transaction drawn from @opening), the batches with their
states and payments (created/sending ones stay in flight, sent ones count as paid, cancelled ones are
history). Run once, with the pool stopped: a second run finds the opening transaction and changes nothing.
A miner balance below zero (a Redis reversal after a payout) opens at zero, the debt charged to
@orphan_losses, and is reported. The Redis ledger is left as it was.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import asyncpg
import msgspec

from pool.bitcoin.amount import btc_amount
from pool.config import Config
from pool.money.books import IN_FLIGHT, OPENING, ORPHAN_LOSSES, PAID, post
from pool.money.db import open_pool
from pool.money.schema import current_revision, head_revision
from pool.shares.keys import Keys
from pool.shares.payouts import PayoutBatch
from pool.shares.redis_conn import RedisClient, create_redis, text
from pool.shares.schemes import MSAT_PER_SAT

IN_FLIGHT_STATES = ("created", "sending")


class LegacyRedisLedger:
    """Reads the ledger older versions kept in Redis (a stream of entries, a balances hash, one hash per
    payout batch); the only code that still reads it. Nothing writes it any more."""

    def __init__(self, client: RedisClient, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    async def balances(self) -> dict[str, int]:
        raw = await self.client.hgetall(self.keys.balances)
        return {text(k): int(v) for k, v in raw.items() if int(v) != 0}

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
            for _, fields in items:
                f = {text(k): text(v) for k, v in fields.items()}
                totals[f["account"]] = totals.get(f["account"], 0) + int(f["msat"])
            last = text(items[-1][0])
        return {a: v for a, v in totals.items() if v != 0}

    async def verify(self) -> dict[str, tuple[int, int]]:
        """Accounts whose balance differs from the sum of their entries: {account: (balance, sum)}."""
        balances, sums = await self.balances(), await self.sum_entries()
        return {a: (balances.get(a, 0), sums.get(a, 0)) for a in set(balances) | set(sums)
                if balances.get(a, 0) != sums.get(a, 0)}

    async def batches(self) -> list[PayoutBatch]:
        out = []
        for key in await self.client.zrevrange(self.keys.payout_batches, 0, -1):
            raw = await self.client.hgetall(self.keys.payout_batch(text(key)))
            if not raw:
                continue
            f = {text(k): text(v) for k, v in raw.items()}
            batch = msgspec.json.decode(f["body"], type=PayoutBatch)
            batch.status = f.get("status", batch.status)
            batch.txid = f.get("txid", "")
            batch.attempts = int(f.get("attempts", 0))
            batch.last_error = f.get("last_error", "")
            out.append(batch)
        return out


def opening_entries(balances: dict[str, int], batches: list[PayoutBatch]) -> tuple[dict[str, int], dict[str, int]]:
    """(entries of the opening transaction, negative miner balances folded into @orphan_losses)."""
    entries: dict[str, int] = {}
    debts: dict[str, int] = {}
    for account, msat in balances.items():
        if msat < 0 and not account.startswith("@"):
            debts[account] = msat
            entries[ORPHAN_LOSSES] = entries.get(ORPHAN_LOSSES, 0) + msat
        elif msat:
            entries[account] = entries.get(account, 0) + msat
    for batch in batches:
        if batch.status in IN_FLIGHT_STATES:
            entries[IN_FLIGHT] = entries.get(IN_FLIGHT, 0) + batch.total_sat * MSAT_PER_SAT
        elif batch.status in ("sent", "confirmed"):
            entries[PAID] = entries.get(PAID, 0) + batch.total_sat * MSAT_PER_SAT
    entries[OPENING] = -sum(entries.values())
    return {a: m for a, m in entries.items() if m}, debts


async def _write(conn: asyncpg.Connection, ref: str, entries: dict[str, int], batches: list[PayoutBatch]) -> bool:
    if not await post(conn, "opening_balance", ref, entries, f"moved from the Redis ledger; {len(batches)} batches"):
        return False
    for batch in batches:
        status = batch.status
        sent = status in ("sent", "confirmed")
        await conn.execute(
            "INSERT INTO payout_batches (key, status, total_sat, created_at, attempts, attempt_at, txid, sent_at, "
            "last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            batch.key, status, batch.total_sat, datetime.fromtimestamp(batch.created_at, UTC), batch.attempts,
            datetime.fromtimestamp(batch.created_at, UTC) if status == "sending" else None,
            batch.txid if sent else None, datetime.fromtimestamp(batch.created_at, UTC) if sent else None,
            batch.last_error)
        await conn.executemany(
            "INSERT INTO accounts (name) VALUES ($1) ON CONFLICT DO NOTHING", [(p.account,) for p in batch.payments])
        await conn.executemany(
            "INSERT INTO payout_payments (batch_key, account, address, amount_sat) VALUES ($1, $2, $3, $4)",
            [(batch.key, p.account, p.address, p.amount_sat) for p in batch.payments])
    return True


async def import_redis_ledger(config: Config) -> int:
    if not config.money.enabled:
        print("config error: money.dsn: is empty (where should the books go?)", file=sys.stderr)
        return 2
    client = create_redis(config.redis)
    legacy = LegacyRedisLedger(client, Keys(config.redis.key_prefix, config.ledger.shards))
    pool = await open_pool(config.money, "geostratum-migrate")
    ref = f"redis:{config.redis.key_prefix}"
    try:
        async with pool.acquire() as conn:
            if await current_revision(conn) != head_revision():
                print("books error: the schema is not current: run `geostratum db migrate` first", file=sys.stderr)
                return 1
        disagree = await legacy.verify()
        if disagree:
            print(f"the Redis ledger disagrees with itself for {len(disagree)} accounts (balance vs entries), "
                  f"e.g. {sorted(disagree.items())[:3]}; nothing moved", file=sys.stderr)
            return 1
        balances = await legacy.balances()
        batches = await legacy.batches()
        entries, debts = opening_entries(balances, batches)
        if len(entries) <= 1:
            print("the Redis ledger holds no balances or batches; nothing to move")
            return 0
        async with pool.acquire() as conn, conn.transaction():
            moved = await _write(conn, ref, entries, batches)
        if not moved:
            print(f"already moved (journal opening_balance {ref}); nothing changed")
            return 0
        # The proof: every account in PostgreSQL holds what Redis held.
        rows = await pool.fetch("SELECT name, balance_msat FROM accounts WHERE name = ANY($1::text[])",
                                list(entries))
        held = {r["name"]: r["balance_msat"] for r in rows}
        wrong = {a: (m, held.get(a, 0)) for a, m in entries.items() if held.get(a, 0) != m}
        if wrong:
            print(f"balances differ after the move: {sorted(wrong.items())[:5]}", file=sys.stderr)
            return 1
        miners = {a: m for a, m in balances.items() if m > 0}
        print(f"moved {len(miners)} balances ({btc_amount(sum(miners.values()) // MSAT_PER_SAT)} BTC) and "
              f"{len(batches)} payout batches from Redis; balances equal account by account")
        for account, msat in sorted(debts.items()):
            print(f"{account}: {msat} msat below zero in Redis opens at 0, charged to {ORPHAN_LOSSES}")
        return 0
    finally:
        await pool.close()
        await client.aclose()
