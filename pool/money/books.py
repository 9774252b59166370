"""The journal and the balances it implies (PostgreSQL; the schema is migrations/0001_books.sql).

Every change of money is one journal transaction: a cause (kind, ref) and entries that add up to zero,
written by the database function post_journal in one statement, so the triggers check the sum and move
the balances in the same transaction. A cause is in the books at most once: posting a block credit
twice, or after a crash that left it half-done, writes nothing the second time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import asyncpg
import msgspec

BLOCK_REWARDS = "@block_rewards"
PPS_SOURCE = "@pps"
ORPHAN_LOSSES = "@orphan_losses"
OPENING = "@opening"
IN_FLIGHT = "@payouts_in_flight"
PAID = "@paid"
COUNTER_ACCOUNTS = (BLOCK_REWARDS, PPS_SOURCE, ORPHAN_LOSSES, OPENING, IN_FLIGHT, PAID)


class BooksError(Exception):
    pass


class JournalLine(msgspec.Struct, frozen=True, kw_only=True):
    journal_id: int
    kind: str
    ref: str
    account: str
    msat: int
    created_at: float


class BooksSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The books at one instant (one read-only transaction)."""

    taken_at: float
    unpaid_msat: int          # owed to miners (accounts without '@')
    accounts_with_balance: int
    pool_msat: int            # the pool fee account
    in_flight_msat: int       # in batches created or sending
    paid_msat: int            # sent by the wallet, all time
    rewards_msat: int         # block rewards credited, net of orphans (as a positive figure)
    last_payout_at: float     # 0 when no batch was ever sent
    last_payout_sat: int
    journal_transactions: int
    inconsistent_accounts: int  # balance differs from the sum of its entries (0 when sound)
    total_msat: int             # the sum of every balance (0 when sound)

    @property
    def consistent(self) -> bool:
        return self.inconsistent_accounts == 0 and self.total_msat == 0


async def post(conn: asyncpg.Connection, kind: str, ref: str, amounts: Mapping[str, int], memo: str = "") -> bool:
    """One journal transaction on `conn` (inside the caller's transaction). False: already posted."""
    lines = [(account, int(msat)) for account, msat in sorted(amounts.items()) if msat]
    if sum(m for _, m in lines) != 0:
        raise BooksError(f"{kind} {ref}: entries add up to {sum(m for _, m in lines)} msat, not 0")
    if not lines:
        raise BooksError(f"{kind} {ref}: no entries")
    journal_id = await conn.fetchval("SELECT post_journal($1, $2, $3::text[], $4::bigint[], $5)", kind, ref,
                                     [a for a, _ in lines], [m for _, m in lines], memo)
    return journal_id is not None


class Books:
    def __init__(self, pool: asyncpg.Pool, pool_account: str = "@pool") -> None:
        self.pool = pool
        self.pool_account = pool_account

    async def post(self, kind: str, ref: str, amounts: Mapping[str, int], memo: str = "") -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            return await post(conn, kind, ref, amounts, memo)

    # -- blocks -------------------------------------------------------------------------------
    async def credit_block(self, block_hash: str, credits: Mapping[str, int], memo: str = "") -> bool:
        """A matured block's credits (msat per account, adding up to its reward), drawn from
        @block_rewards. Exactly once per block hash: False when the block is already credited."""
        reward = sum(credits.values())
        if reward <= 0 or any(v < 0 for v in credits.values()):
            raise BooksError(f"block {block_hash}: credits must be positive (got a total of {reward} msat)")
        if BLOCK_REWARDS in credits:
            raise BooksError(f"block {block_hash}: {BLOCK_REWARDS} cannot be credited")
        return await self.post("block_credit", block_hash, {**credits, BLOCK_REWARDS: -reward}, memo)

    async def reverse_block(self, block_hash: str) -> bool:
        """An orphaned block's credits are taken back by a compensating transaction (the credit stays in
        the journal). What an account no longer holds (paid out since) is charged to @orphan_losses, so
        no balance goes negative. False when the block was never credited or is already reversed."""
        async with self.pool.acquire() as conn, conn.transaction():
            credited = await conn.fetch(
                "SELECT e.account, e.amount_msat FROM entries e JOIN journal j ON j.id = e.journal_id "
                "WHERE j.kind = 'block_credit' AND j.ref = $1 ORDER BY e.account", block_hash)
            if not credited:
                return False
            accounts = [r["account"] for r in credited if r["account"] != BLOCK_REWARDS]
            held = {r["name"]: r["balance_msat"] for r in await conn.fetch(
                "SELECT name, balance_msat FROM accounts WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE",
                accounts)}
            amounts: dict[str, int] = {}
            shortfall = 0
            for r in credited:
                account, msat = r["account"], r["amount_msat"]
                if account == BLOCK_REWARDS:
                    amounts[account] = -msat
                    continue
                taken = min(msat, max(0, held.get(account, 0)))
                amounts[account] = -taken
                shortfall += msat - taken
            if shortfall:
                amounts[ORPHAN_LOSSES] = -shortfall
            return await post(conn, "orphan_reversal", block_hash, amounts,
                              f"orphaned; {shortfall} msat already paid out" if shortfall else "orphaned")

    async def credited_blocks(self, block_hashes: list[str]) -> set[str]:
        rows = await self.pool.fetch("SELECT ref FROM journal WHERE kind = 'block_credit' AND ref = ANY($1::text[])",
                                     block_hashes)
        return {r["ref"] for r in rows}

    # -- reading ------------------------------------------------------------------------------
    async def balances(self, include_counter_accounts: bool = False) -> dict[str, int]:
        """Non-zero balances (msat); miners and the pool account, or every account."""
        rows = await self.pool.fetch(
            "SELECT name, balance_msat FROM accounts WHERE balance_msat <> 0 AND ($1 OR name <> ALL($2::text[]))",
            include_counter_accounts, list(COUNTER_ACCOUNTS))
        return {r["name"]: r["balance_msat"] for r in rows}

    async def balances_of(self, accounts: list[str]) -> dict[str, int]:
        """Balances (msat) of these accounts; an account never credited is absent."""
        rows = await self.pool.fetch("SELECT name, balance_msat FROM accounts WHERE name = ANY($1::text[])", accounts)
        return {r["name"]: r["balance_msat"] for r in rows}

    async def paid_of(self, accounts: list[str]) -> dict[str, int]:
        """What each account was debited into payout batches, net of cancelled ones (msat, >= 0); an
        account never paid is absent."""
        rows = await self.pool.fetch(
            "SELECT e.account, -sum(e.amount_msat) AS paid FROM entries e JOIN journal j ON j.id = e.journal_id "
            "WHERE e.account = ANY($1::text[]) AND j.kind IN ('payout', 'payout_cancel') GROUP BY e.account",
            accounts)
        return {r["account"]: int(r["paid"]) for r in rows}

    async def balance(self, account: str) -> int:
        value = await self.pool.fetchval("SELECT balance_msat FROM accounts WHERE name = $1", account)
        return int(value or 0)

    async def lines(self, account: str | None = None, limit: int = 1000) -> list[JournalLine]:
        """Newest first."""
        rows = await self.pool.fetch(
            "SELECT j.id, j.kind, j.ref, e.account, e.amount_msat, extract(epoch FROM j.created_at) AS ts "
            "FROM entries e JOIN journal j ON j.id = e.journal_id WHERE ($1::text IS NULL OR e.account = $1) "
            "ORDER BY e.id DESC LIMIT $2", account, limit)
        return [JournalLine(journal_id=r["id"], kind=r["kind"], ref=r["ref"], account=r["account"],
                            msat=r["amount_msat"], created_at=float(r["ts"])) for r in rows]

    async def inconsistencies(self) -> dict[str, tuple[int, int]]:
        """{account: (balance, sum of its entries)} where they differ; empty when the books are sound."""
        rows = await self.pool.fetch("SELECT account, balance_msat, entries_msat FROM books_inconsistencies")
        return {r["account"]: (r["balance_msat"], r["entries_msat"]) for r in rows}

    async def snapshot(self) -> BooksSnapshot:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(
                "SELECT coalesce(sum(balance_msat) FILTER (WHERE name NOT LIKE '@%'), 0)::bigint AS unpaid, "
                "count(*) FILTER (WHERE name NOT LIKE '@%' AND balance_msat > 0) AS holders, "
                "coalesce(sum(balance_msat), 0)::bigint AS total, "
                "coalesce(sum(balance_msat) FILTER (WHERE name = $1), 0)::bigint AS pool, "
                "coalesce(sum(balance_msat) FILTER (WHERE name = $2), 0)::bigint AS in_flight, "
                "coalesce(sum(balance_msat) FILTER (WHERE name = $3), 0)::bigint AS paid, "
                "coalesce(sum(balance_msat) FILTER (WHERE name = $4), 0)::bigint AS rewards FROM accounts",
                self.pool_account, IN_FLIGHT, PAID, BLOCK_REWARDS)
            last = await conn.fetchrow(
                "SELECT extract(epoch FROM sent_at) AS at, total_sat FROM payout_batches "
                "WHERE sent_at IS NOT NULL ORDER BY sent_at DESC LIMIT 1")
            bad = await conn.fetchval("SELECT count(*) FROM books_inconsistencies")
            transactions = await conn.fetchval("SELECT count(*) FROM journal")
        return BooksSnapshot(
            taken_at=time.time(), unpaid_msat=row["unpaid"], accounts_with_balance=row["holders"],
            pool_msat=row["pool"], in_flight_msat=row["in_flight"], paid_msat=row["paid"],
            rewards_msat=-row["rewards"], last_payout_at=float(last["at"]) if last else 0.0,
            last_payout_sat=last["total_sat"] if last else 0, journal_transactions=transactions,
            inconsistent_accounts=bad, total_msat=row["total"])
