"""Payout batches in PostgreSQL: debited in one transaction, sent at most once (committed as sending
before the wallet call, looked up in the wallet after any doubt), cancelled back, CLI unchanged."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from pool.cli import main
from pool.money.books import IN_FLIGHT, PAID, Books
from pool.money.payments import Payouts
from pool.shares.payouts import PayoutBatch, PayoutError, WalletRpcError
from tests.ledger.wallet_standin import WalletStandIn, rpc_client

ALICE = "bcrt1qm2n8duyglvgeh4dvztaf4jl8gm50njj4y7pums"    # real regtest addresses (tests/data/fixtures)
BOB = "bcrt1qyq5ygr4caxu0jec7dvlqx3hq7p5jl2zykefnf5"
H1 = "00" * 31 + "01"
# alice 0.6 BTC + 123 msat, bob 0.4 BTC, a name that is no address 1 BTC, the pool fee 0.01 BTC
CREDITS = {ALICE: 60_000_000_123, BOB: 40_000_000_000, "not-an-address": 100_000_000_000, "@pool": 1_000_000_000}


async def credited(pool: asyncpg.Pool) -> Books:
    books = Books(pool)
    assert await books.credit_block(H1, CREDITS)
    return books


def only_addresses(account: str) -> str | None:
    return account if account.startswith("bcrt1") else None


async def new_batch(pool: asyncpg.Pool) -> tuple[Payouts, PayoutBatch]:
    """The CREDITS block in the books and a batch of every address holding at least 1000 sat."""
    await credited(pool)
    payouts = Payouts(pool)
    batch = await payouts.create_batch(1000, address_for=only_addresses)
    assert batch is not None
    return payouts, batch


@pytest.fixture
async def wallet() -> AsyncIterator[WalletStandIn]:
    stand_in = WalletStandIn()
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


async def test_create_send_pays_each_account_once(books_pool: asyncpg.Pool) -> None:
    books = await credited(books_pool)
    payouts = Payouts(books_pool)
    batch = await payouts.create_batch(1000, address_for=only_addresses)
    assert batch is not None
    assert [(p.account, p.amount_sat) for p in batch.payments] == [(ALICE, 60_000_000), (BOB, 40_000_000)]
    assert await payouts.create_batch(1000, address_for=only_addresses) is None   # nothing left to pay
    # Whole satoshis leave; alice's 123 msat stay; the batch is in flight.
    balances = await books.balances(include_counter_accounts=True)
    assert balances[ALICE] == 123 and BOB not in balances and balances[IN_FLIGHT] == 100_000_000_000
    wallet = WalletStandIn()
    await wallet.start()
    try:
        async with aiohttp.ClientSession() as session:
            rpc = rpc_client(session, wallet.url)
            txid = await payouts.send_batch(batch.key, rpc)
            assert await payouts.send_batch(batch.key, rpc) == txid          # a retry pays nothing more
    finally:
        await wallet.stop()
    (params,) = wallet.sends()
    assert params[1] == {ALICE: "0.60000000", BOB: "0.40000000"} and params[3] == f"geostratum-payout:{batch.key}"
    stored = await payouts.batch(batch.key)
    assert (stored.status, stored.txid, stored.attempts) == ("sent", txid, 1)
    balances = await books.balances(include_counter_accounts=True)
    assert balances[PAID] == 100_000_000_000 and IN_FLIGHT not in balances
    assert (await books.snapshot()).consistent
    assert (await books.snapshot()).last_payout_sat == 100_000_000


async def test_cancel_credits_back_and_a_cancelled_batch_is_never_sent(books_pool: asyncpg.Pool) -> None:
    books = await credited(books_pool)
    payouts = Payouts(books_pool)
    batch = await payouts.create_batch(1000, address_for=only_addresses)
    assert batch is not None
    assert await payouts.cancel_batch(batch.key)
    assert not await payouts.cancel_batch(batch.key)
    assert (await books.balances())[ALICE] == CREDITS[ALICE]
    with pytest.raises(PayoutError, match="was cancelled"):
        await payouts.send_batch(batch.key, rpc_client(None, ""))  # type: ignore[arg-type]
    with pytest.raises(PayoutError, match="no payout batch"):
        await payouts.cancel_batch("f" * 32)
    # The database refuses a transition the code would never make.
    with pytest.raises(asyncpg.RestrictViolationError, match="not a valid transition"):
        await books_pool.execute("UPDATE payout_batches SET status = 'created' WHERE key = $1", batch.key)
    assert (await books.snapshot()).consistent


async def test_wallet_refusal_then_lost_reply_then_retry_pays_once(books_pool: asyncpg.Pool,
                                                                   wallet: WalletStandIn) -> None:
    payouts, batch = await new_batch(books_pool)
    async with aiohttp.ClientSession() as session:
        rpc = rpc_client(session, wallet.url)
        wallet.fail_next_send = (-6, "Insufficient funds")          # definite: nothing was sent
        with pytest.raises(WalletRpcError):
            await payouts.send_batch(batch.key, rpc)
        assert (await payouts.batch(batch.key)).status == "created"
        wallet.drop_after_send = True                                # sent, the reply lost
        with pytest.raises(aiohttp.ClientError):
            await payouts.send_batch(batch.key, rpc, now=1000.0)
        stored = await payouts.batch(batch.key)
        assert stored.status == "sending" and stored.last_error.startswith("ambiguous")
        txid = await payouts.send_batch(batch.key, rpc, now=1001.0)  # found in the wallet, not resent
    assert len(wallet.sends()) == 2 and wallet.transactions[-1]["txid"] == txid
    assert len({t["txid"] for t in wallet.transactions}) == 1          # one payment went out
    assert (await payouts.batch(batch.key)).status == "sent"


async def test_a_send_that_never_reached_the_wallet_waits_then_goes_once(books_pool: asyncpg.Pool,
                                                                         wallet: WalletStandIn) -> None:
    payouts, batch = await new_batch(books_pool)
    async with aiohttp.ClientSession() as session:
        rpc = rpc_client(session, wallet.url)
        wallet.drop_before_send = True
        with pytest.raises(aiohttp.ClientError):
            await payouts.send_batch(batch.key, rpc, now=1000.0)
        with pytest.raises(PayoutError, match="retry after 60s"):
            await payouts.send_batch(batch.key, rpc, now=1010.0)      # could still be completing
        txid = await payouts.send_batch(batch.key, rpc, now=1061.0)
    assert len(wallet.transactions) == 2 and {t["txid"] for t in wallet.transactions} == {txid}
    assert (await payouts.batch(batch.key)).attempts == 2


def _config(tmp_path: Path, dsn: str, wallet_url: str) -> Path:
    path = tmp_path / "pool.toml"
    path.write_text(f"""
[chain]
backend = "bitcoind"
network = "regtest"
rpc_timeout = 120.0  # a send held by the test outlasts a slow start of the other process
[[chain.nodes]]
url = "{wallet_url.rstrip('/')}"
user = "pool"
password = "pool"
[payouts]
wallet = "pool"
export_dir = "{tmp_path / 'exports'}"
[money]
dsn = "{dsn}"
""")
    return path


async def test_payout_commands_on_postgres(books_dsn: str, books_pool: asyncpg.Pool, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    await credited(books_pool)
    wallet = WalletStandIn()
    await wallet.start()
    config = str(_config(tmp_path, books_dsn, wallet.url))

    async def cli(*args: str) -> tuple[int, str]:
        code = await asyncio.to_thread(main, ["payouts", "--config", config, *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    try:
        code, out = await cli("balances")
        assert code == 0
        assert [line.split()[:2] for line in out.splitlines()[2:]] == [
            ["not-an-address", "1.00000000"], [ALICE, "0.60000000"], [BOB, "0.40000000"], ["@pool", "0.01000000"],
            ["total", "2.01000000"]]
        code, out = await cli("create", "--threshold", "1000")
        assert code == 0, out
        key = re.search(r"batch ([0-9a-f]{32}): 2 payments, 1.00000000 BTC", out).group(1)  # type: ignore[union-attr]
        assert (tmp_path / "exports" / f"payout-{key}.csv").read_text().startswith("account,address,amount_sat")
        code, out = await cli("send", key)
        assert code == 0 and "paid in" in out
        txid = out.split()[-1]
        code, out = await cli("send", key)
        assert code == 0 and out.split()[-1] == txid
        code, out = await cli("list")
        assert out.splitlines()[0].split()[:3] == ["batch", "created", "(UTC)"]
        created = (await Payouts(books_pool).batch(key)).created_at
        assert out.splitlines()[1].split() == [key, *time.strftime("%Y-%m-%d %H:%M", time.gmtime(created)).split(),
                                               "sent", "2", "1.00000000", txid]
        code, out = await cli("confirm")
        assert code == 0 and out.strip() == "0 batches reached payouts.payout_confirmations = 6 confirmations"
        for t in wallet.transactions:
            t["confirmations"] = 6
        code, out = await cli("confirm")
        assert code == 0 and out.splitlines() == [f"batch {key} confirmed",
                                                  "1 batch reached payouts.payout_confirmations = 6 confirmations"]
        code, out = await cli("list")
        assert out.splitlines()[1].split()[:4:3] == [key, "confirmed"]
        code, out = await cli("cancel", key)
        assert code == 1 and "not in status created" in out
        code, out = await cli("send", "0" * 32)
        assert code == 1 and out.strip() == f"payout error: no payout batch '{'0' * 32}'"
    finally:
        await wallet.stop()
    assert len(wallet.sends()) == 1


async def test_two_processes_sending_one_batch_pay_once(books_dsn: str, books_pool: asyncpg.Pool,
                                                        tmp_path: Path) -> None:
    """Two `payouts send` at once: one claims the batch and its sendmany is held until the other has
    exited, having found the batch claimed or sending (and no wallet transaction yet)."""
    await credited(books_pool)
    batch = await Payouts(books_pool).create_batch(1000, address_for=only_addresses)
    assert batch is not None
    wallet = WalletStandIn()
    one_exited = asyncio.Event()

    async def hold() -> None:   # bounded by the test's own wait below (a loaded machine starts processes slowly)
        await asyncio.wait_for(one_exited.wait(), 110)

    wallet.before_send = hold
    await wallet.start()
    config = str(_config(tmp_path, books_dsn, wallet.url))

    async def send() -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pool.cli", "payouts", "--config", config, "send", batch.key,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        one_exited.set()
        return proc.returncode or 0, out.decode()

    try:
        results = await asyncio.wait_for(asyncio.gather(send(), send()), 120)
    finally:
        await wallet.stop()
    assert sorted(code for code, _ in results) == [0, 1], results
    (loser,), (winner,) = [out for code, out in results if code == 1], [out for code, out in results if code == 0]
    assert "paid in" in winner
    assert ("being sent by another process" in loser or "has no wallet transaction yet" in loser), loser
    assert len(wallet.sends()) == 1
    assert (await Payouts(books_pool).batch(batch.key)).status == "sent"


async def test_two_processes_creating_at_once_debit_each_balance_once(books_dsn: str, books_pool: asyncpg.Pool,
                                                                      tmp_path: Path) -> None:
    books = await credited(books_pool)
    config = str(_config(tmp_path, books_dsn, "http://127.0.0.1:9/"))
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pool.cli", "payouts", "--config", config, "create", "--threshold", "1000",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for _ in range(2)]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 60)
    said = sorted(out.decode().splitlines()[0] for out, _ in outputs)
    assert [p.returncode for p in procs] == [0, 0]
    assert said[0].startswith("batch ")
    assert said[1] == "no account with a payout address holds 0.00001000 BTC = 1,000 sat or more; no batch made"
    assert await books_pool.fetchval("SELECT count(*) FROM payout_batches") == 1
    assert (await books.snapshot()).in_flight_msat == 100_000_000_000
