"""Writes a payout ledger in Redis the way versions before the PostgreSQL books kept it (a stream of
entries, a balances hash, one hash per payout batch plus a zset of them): the input of
`geostratum payouts migrate-from-redis`. Nothing in the pool writes this layout any more."""

from __future__ import annotations

from typing import Any

import msgspec

from pool.shares.keys import Keys
from pool.shares.payouts import PayoutBatch
from pool.shares.schemes import MSAT_PER_SAT


async def write_entry(client: Any, keys: Keys, kind: str, account: str, msat: int, ref: str, ts: float) -> None:
    await client.xadd(keys.ledger, {"kind": kind, "account": account, "msat": msat, "ref": ref, "ts": repr(ts)})
    await client.hincrby(keys.balances, account, msat)


async def write_credits(client: Any, keys: Keys, block_hash: str, credits: dict[str, int], ts: float) -> None:
    for account, msat in sorted(credits.items()):
        await write_entry(client, keys, "credit", account, msat, block_hash, ts)


async def write_batch(client: Any, keys: Keys, batch: PayoutBatch) -> None:
    """The batch's payout entries (debits) and its hash, in the state the batch says (created, sent...)."""
    for p in batch.payments:
        await write_entry(client, keys, "payout", p.account, -p.amount_sat * MSAT_PER_SAT, batch.key, batch.created_at)
    body = msgspec.json.encode(msgspec.structs.replace(batch, status="created", txid="", attempts=0))
    await client.hset(keys.payout_batch(batch.key), mapping={
        "status": batch.status, "created_at": repr(batch.created_at), "body": body, "txid": batch.txid,
        "attempts": batch.attempts})
    await client.zadd(keys.payout_batches, {batch.key: batch.created_at})
