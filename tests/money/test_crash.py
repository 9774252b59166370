"""kill -9 at each step of crediting a block and of creating and sending a payout, against a real
PostgreSQL, Redis and wallet stand-in; after a restart the books balance and nothing is paid twice.

The crash points are reached without hooks in the code: the test holds a row lock so the child blocks
inside its transaction, pauses Redis writes so it blocks between the books' commit and the Redis status,
or kills it from inside the wallet's sendmany handler (before or after the payment goes out)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from pool.config.ledger import PayoutConfig
from pool.money.books import Books
from pool.money.payments import Payouts
from tests.ledger.support import make_ledger
from tests.ledger.test_payouts import BLOCK, Node, pplns_history
from tests.ledger.wallet_standin import WalletStandIn
from tests.money.credit_child import APPLICATION
from tests.money.test_block_credits import PPLNS_CREDITS
from tests.money.test_payments import ALICE, BOB, CREDITS, H1, only_addresses
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


async def spawn(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, *argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode if proc.returncode is not None else -1, out.decode()


def kill9(proc: asyncio.subprocess.Process) -> None:
    os.kill(proc.pid, signal.SIGKILL)


async def blocked_on_lock(pool: asyncpg.Pool, application: str) -> bool:
    return bool(await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' "
        "AND datname = current_database()", application))


class RowLock:
    """An open transaction holding FOR UPDATE on one account, so a writer blocks inside its own."""

    def __init__(self, dsn: str, account: str) -> None:
        self.dsn, self.account = dsn, account

    async def __aenter__(self) -> RowLock:
        self.conn = await asyncpg.connect(self.dsn)
        self.tx = self.conn.transaction()
        await self.tx.start()
        assert await self.conn.fetchval("SELECT 1 FROM accounts WHERE name = $1 FOR UPDATE", self.account)
        return self

    async def release(self) -> None:
        if not self.conn.is_closed():
            await self.tx.rollback()
            await self.conn.close()

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


# -- crediting a block ----------------------------------------------------------------------------

async def pending_block(redis_url: str, journal_dir: Path) -> None:
    """A found block, pending in Redis, its PPLNS window frozen (as the pool leaves it before maturity)."""
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(pplns_factor=2.5), confirmations=Node(),
                         block_poll_interval_s=3600)
    await ledger.start()
    try:
        await pplns_history(ledger, time.time() - 100)
        assert await ledger.payouts.snapshot_window(BLOCK)
    finally:
        await ledger.stop()


async def block_status(redis_url: str) -> str:
    client = aioredis.from_url(redis_url)
    try:
        return (await client.hget(f"{{gs:pay}}:blk:{BLOCK}", "status") or b"").decode()
    finally:
        await client.aclose()


async def credit_child(redis_url: str, dsn: str, tmp_path: Path) -> asyncio.subprocess.Process:
    return await spawn("-m", "tests.money.credit_child", redis_url, dsn, str(tmp_path / "child-journal"), "2.5")


async def assert_credited_once(pool: asyncpg.Pool, redis_url: str) -> None:
    assert await Books(pool).balances() == PPLNS_CREDITS
    assert await pool.fetchval("SELECT count(*) FROM journal") == 1
    assert (await Books(pool).snapshot()).consistent
    assert await block_status(redis_url) == "confirmed"


async def test_kill_inside_the_credit_transaction(redis_url: str, journal_dir: Path, books_dsn: str,
                                                  books_pool: asyncpg.Pool, tmp_path: Path) -> None:
    await pending_block(redis_url, journal_dir)
    async with RowLock(books_dsn, "@block_rewards") as lock:
        child = await credit_child(redis_url, books_dsn, tmp_path)
        await wait_for(lambda: blocked_on_lock(books_pool, APPLICATION), 30, "the credit to block on the row lock")
        kill9(child)
        assert (await finish(child))[0] == -signal.SIGKILL
        await lock.release()
    assert await books_pool.fetchval("SELECT count(*) FROM journal") == 0
    assert await block_status(redis_url) == "pending"
    code, out = await finish(await credit_child(redis_url, books_dsn, tmp_path))
    assert code == 0 and f"{BLOCK}:confirmed" in out, out
    await assert_credited_once(books_pool, redis_url)
    code, out = await finish(await credit_child(redis_url, books_dsn, tmp_path))
    assert code == 0 and out.strip() == "no change", out
    await assert_credited_once(books_pool, redis_url)


async def test_kill_after_the_books_commit_before_redis(redis_url: str, journal_dir: Path, books_dsn: str,
                                                        books_pool: asyncpg.Pool, tmp_path: Path) -> None:
    await pending_block(redis_url, journal_dir)
    admin = aioredis.from_url(redis_url)
    try:
        async with RowLock(books_dsn, "@block_rewards") as lock:
            child = await credit_child(redis_url, books_dsn, tmp_path)
            await wait_for(lambda: blocked_on_lock(books_pool, APPLICATION), 30, "the credit to block")
            await admin.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")   # the status write will wait
            await lock.release()
            await wait_for(lambda: books_pool.fetchval("SELECT count(*) FROM journal"), 30, "the credit's commit")
            kill9(child)
            assert (await finish(child))[0] == -signal.SIGKILL
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()
    assert await block_status(redis_url) == "pending"                # the books have it, Redis does not
    assert await Books(books_pool).balances() == PPLNS_CREDITS
    code, out = await finish(await credit_child(redis_url, books_dsn, tmp_path))
    assert code == 0 and f"{BLOCK}:confirmed" in out, out
    await assert_credited_once(books_pool, redis_url)


# -- creating and sending a payout ------------------------------------------------------------------

def payout_config(tmp_path: Path, dsn: str, wallet_url: str) -> str:
    path = tmp_path / "pool.toml"
    path.write_text(f"""
[chain]
backend = "bitcoind"
network = "regtest"
rpc_timeout = 60.0
[[chain.nodes]]
url = "{wallet_url.rstrip('/')}"
user = "pool"
password = "pool"
[payouts]
wallet = "pool"
export_dir = "{tmp_path / 'exports'}"
resend_after_s = 0.0
[money]
dsn = "{dsn}"
""")
    return str(path)


async def paid_once(pool: asyncpg.Pool, wallet: WalletStandIn, key: str) -> None:
    """The wallet paid each address of the batch exactly its amount, in one transaction; the books agree."""
    batch = await Payouts(pool).batch(key)
    assert batch.status == "sent"
    paid: dict[str, Decimal] = {}
    for t in wallet.transactions:
        paid[t["address"]] = paid.get(t["address"], Decimal(0)) - Decimal(str(t["amount"]))
    assert paid == {p.address: Decimal(p.amount_sat) / 10**8 for p in batch.payments}
    assert {t["txid"] for t in wallet.transactions} == {batch.txid}
    snap = await Books(pool).snapshot()
    assert snap.consistent and snap.paid_msat == batch.total_sat * 1000 and snap.in_flight_msat == 0


Arm = Callable[[WalletStandIn, Callable[[], Awaitable[None]]], None]


async def crash_in_send(books_pool: asyncpg.Pool, books_dsn: str, tmp_path: Path,
                        arm: Arm) -> tuple[WalletStandIn, str]:
    await Books(books_pool).credit_block(H1, CREDITS)
    batch = await Payouts(books_pool).create_batch(1000, address_for=only_addresses)
    assert batch is not None
    wallet = WalletStandIn()
    await wallet.start()
    config = payout_config(tmp_path, books_dsn, wallet.url)
    child: asyncio.subprocess.Process | None = None

    async def kill_child() -> None:
        assert child is not None
        kill9(child)
        await child.wait()

    arm(wallet, kill_child)
    try:
        child = await spawn("-m", "pool.cli", "payouts", "--config", config, "send", batch.key)
        code, out = await finish(child)
        assert code == -signal.SIGKILL, out
        assert (await Payouts(books_pool).batch(batch.key)).status == "sending"
        wallet.before_send = wallet.after_send = None
        code, out = await finish(await spawn("-m", "pool.cli", "payouts", "--config", config, "send", batch.key))
        assert code == 0 and "paid in" in out, out
    finally:
        await wallet.stop()
    return wallet, batch.key


async def test_kill_after_sending_is_committed_before_the_wallet_call(books_pool: asyncpg.Pool, books_dsn: str,
                                                                      tmp_path: Path) -> None:
    def arm(wallet: WalletStandIn, kill: Callable[[], Awaitable[None]]) -> None:
        async def before() -> None:
            await kill()
            raise ConnectionResetError("the payer died before the wallet sent anything")
        wallet.before_send = before

    wallet, key = await crash_in_send(books_pool, books_dsn, tmp_path, arm)
    assert len(wallet.sends()) == 2          # the first never went out; the restart sent it once
    await paid_once(books_pool, wallet, key)


async def test_kill_after_the_wallet_paid_before_the_commit(books_pool: asyncpg.Pool, books_dsn: str,
                                                            tmp_path: Path) -> None:
    def arm(wallet: WalletStandIn, kill: Callable[[], Awaitable[None]]) -> None:
        wallet.after_send = kill

    wallet, key = await crash_in_send(books_pool, books_dsn, tmp_path, arm)
    assert len(wallet.sends()) == 1          # the restart found the payment by its comment
    await paid_once(books_pool, wallet, key)


async def test_kill_inside_the_create_transaction(books_pool: asyncpg.Pool, books_dsn: str, tmp_path: Path) -> None:
    books = Books(books_pool)
    await books.credit_block(H1, CREDITS)
    config = payout_config(tmp_path, books_dsn, "http://127.0.0.1:9/")
    async with RowLock(books_dsn, BOB) as lock:
        child = await spawn("-m", "pool.cli", "payouts", "--config", config, "create", "--threshold", "1000")
        await wait_for(lambda: blocked_on_lock(books_pool, "geostratum-payouts"), 30, "create to block")
        kill9(child)
        assert (await finish(child))[0] == -signal.SIGKILL
        await lock.release()
    assert await books_pool.fetchval("SELECT count(*) FROM payout_batches") == 0
    assert await books.balances() == CREDITS
    code, out = await finish(await spawn("-m", "pool.cli", "payouts", "--config", config, "create",
                                         "--threshold", "1000"))
    assert code == 0 and "2 payments, 1.00000000 BTC" in out, out
    (batch,) = await Payouts(books_pool).batches()
    assert {p.account: p.amount_sat for p in batch.payments} == {ALICE: 60_000_000, BOB: 40_000_000}
    # A crash after the commit, before the files: they are written again from the books.
    (tmp_path / "exports" / f"payout-{batch.key}.csv").unlink()
    code, out = await finish(await spawn("-m", "pool.cli", "payouts", "--config", config, "export", batch.key))
    assert code == 0 and f"payout-{batch.key}.csv" in out
    assert (tmp_path / "exports" / f"payout-{batch.key}.csv").read_text().splitlines()[1:] == [
        f"{ALICE},{ALICE},60000000,0.60000000", f"{BOB},{BOB},40000000,0.40000000"]
    assert (await books.snapshot()).consistent
