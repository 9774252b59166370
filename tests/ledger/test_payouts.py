"""Payout schemes with hand-checked numbers, maturity, orphan reversal, batches and idempotent sendmany."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import aiohttp
import pytest

from pool.config.ledger import PayoutConfig
from pool.shares.ledger import Ledger
from pool.shares.payouts import PayoutError, WalletRpcError
from pool.shares.schemes import FeeRatio, block_subsidy_sat, pplns_window, share_value_msat, split_reward
from pool.stratum.events import ShareRecord
from tests.ledger.support import flush_until_done, make_ledger
from tests.ledger.wallet_standin import WalletStandIn, rpc_client

BLOCK = "00000000000000000002" + "ab" * 22
REWARD = 5_000_000_000  # 50 BTC coinbase


def share(account: str, difficulty: float, ts: float) -> ShareRecord:
    return ShareRecord(timestamp=ts, account=account, worker=f"{account}.rig0", difficulty=difficulty,
                       share_difficulty=difficulty, height=100)


class Node:
    """Confirmations as the node would report them (getblockheader: -1 = not on the main chain)."""

    def __init__(self) -> None:
        self.confirmations: dict[str, int] = {}
        self.down = False

    async def __call__(self, block_hash: str) -> int:
        if self.down:
            raise ConnectionError("node unreachable")
        return self.confirmations[block_hash]


async def pplns_history(ledger: Ledger, base: float) -> None:
    """Three slices 20 s apart: {alice: 1000}, {bob: 600, alice: 400}, {carol: 1000}; then the block."""
    for records in ([share("alice", 1000, base)],
                    [share("bob", 600, base + 20), share("alice", 400, base + 20)],
                    [share("carol", 1000, base + 40)]):
        for r in records:
            ledger.add(r)
        await flush_until_done(ledger)
    await ledger.record_block(BLOCK, 100, "carol", "carol.rig0", REWARD, network_difficulty=1000,
                              found_at=base + 41)
    await flush_until_done(ledger)


async def test_pplns_block_credits_mature_then_orphan_reverses(redis_url: str, journal_dir: Path) -> None:
    node = Node()
    payouts = PayoutConfig(scheme="pplns", fee_percent=1.0, pplns_factor=2.5, maturity_confirmations=100)
    ledger = make_ledger(journal_dir, redis_url, payouts=payouts, confirmations=node)
    await ledger.start()
    await pplns_history(ledger, time.time() - 100)
    # A share after the block belongs to the next round and window.
    ledger.add(share("dave", 500, time.time()))
    await flush_until_done(ledger)

    # N = 2.5 x 1000 = 2500: carol 1000 + (bob 600, alice 400) + half of alice's oldest 1000.
    assert await ledger.payouts.snapshot_window(BLOCK) == {"alice": 900.0, "bob": 600.0, "carol": 1000.0}
    current = await ledger.reader.round()
    assert (current.shares, current.difficulty) == (1, 500.0)
    (block,) = await ledger.reader.blocks()
    assert (block.status, block.scheme, block.reward_sat) == ("pending", "pplns", REWARD)

    watcher = ledger.watcher
    assert watcher is not None
    node.confirmations[BLOCK] = 99
    assert await watcher.poll_once() == []
    assert await ledger.reader.balances() == {}
    node.confirmations[BLOCK] = 100
    (change,) = await watcher.poll_once()
    assert (change.old_status, change.new_status) == ("pending", "confirmed")
    # 50 BTC - 1% = 49.5 BTC = 4.95e12 msat split 900 : 600 : 1000 of 2500; the fee to @pool.
    credited = {"alice": 1_782_000_000_000, "bob": 1_188_000_000_000, "carol": 1_980_000_000_000,
                "@pool": 50_000_000_000}
    assert await ledger.reader.balances() == credited
    assert sum(credited.values()) == REWARD * 1000
    assert await watcher.poll_once() == []  # a second pass credits nothing more
    assert await ledger.reader.balances() == credited

    node.confirmations[BLOCK] = -1  # reorged out after maturity
    (change,) = await watcher.poll_once()
    assert change.new_status == "orphaned"
    assert await ledger.reader.balances() == {}
    entries = await ledger.payouts.entries()
    kinds = sorted((e.kind, e.account, e.msat) for e in entries)
    assert kinds == sorted([("credit", a, v) for a, v in credited.items()]
                           + [("reversal", a, -v) for a, v in credited.items()])
    assert await ledger.payouts.verify() == {}
    (block,) = await ledger.reader.blocks()
    assert block.status == "orphaned"
    await ledger.stop()


async def test_orphaned_before_maturity_writes_nothing(redis_url: str, journal_dir: Path) -> None:
    node = Node()
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(pplns_factor=2.5), confirmations=node)
    await ledger.start()
    await pplns_history(ledger, time.time() - 100)
    node.confirmations[BLOCK] = 5
    await ledger.watcher.poll_once()  # type: ignore[union-attr]
    node.down = True
    assert await ledger.watcher.poll_once() == []  # type: ignore[union-attr]
    assert "node unreachable" in ledger.watcher.last_error  # type: ignore[union-attr]
    node.down = False
    node.confirmations[BLOCK] = -1
    (change,) = await ledger.watcher.poll_once()  # type: ignore[union-attr]
    assert (change.old_status, change.new_status) == ("pending", "orphaned")
    assert await ledger.payouts.entries() == []
    await ledger.stop()


async def test_solo_pays_the_finder(redis_url: str, journal_dir: Path) -> None:
    node = Node()
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(scheme="solo", fee_percent=2.0),
                         confirmations=node)
    await ledger.start()
    await pplns_history(ledger, time.time() - 100)
    node.confirmations[BLOCK] = 150
    await ledger.watcher.poll_once()  # type: ignore[union-attr]
    # 50 BTC x 98% to the finder, 2% to the pool.
    assert await ledger.reader.balances() == {"carol": 4_900_000_000_000, "@pool": 100_000_000_000}
    await ledger.stop()


@pytest.mark.parametrize(("scheme", "fee_ratio", "per_share_msat"), [
    # 1000 / 1e6 x 3.125 BTC (3.125e11 msat) x 98% = 306,250,000 msat
    ("pps", 0.0, 306_250_000),
    # the same x (1 + 0.1 fee ratio) = 336,875,000 msat
    ("fpps", 0.1, 336_875_000),
])
async def test_pps_and_fpps_credit_per_share(redis_url: str, journal_dir: Path, scheme: str, fee_ratio: float,
                                             per_share_msat: int) -> None:
    node = Node()
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(scheme=scheme, fee_percent=2.0),
                         confirmations=node)
    ledger.set_network(1e6, subsidy_sat=312_500_000, fee_ratio=fee_ratio)
    await ledger.start()
    now = time.time()
    for _ in range(3):
        ledger.add(share("alice", 1000, now))
    ledger.add(share("bob", 2000, now))
    await flush_until_done(ledger)
    assert await ledger.reader.balances() == {"alice": 3 * per_share_msat, "bob": 2 * per_share_msat}
    entries = await ledger.payouts.entries()
    assert {e.kind for e in entries} == {scheme}
    # The block itself belongs to the pool, which already paid per share.
    await ledger.record_block(BLOCK, 840_000, "bob", "bob.rig0", 312_500_000, network_difficulty=1e6)
    await flush_until_done(ledger)
    node.confirmations[BLOCK] = 100
    await ledger.watcher.poll_once()  # type: ignore[union-attr]
    balances = await ledger.reader.balances()
    assert balances["@pool"] == 312_500_000 * 1000
    assert balances["alice"] == 3 * per_share_msat
    await ledger.stop()


async def test_pps_waits_for_network_difficulty(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(scheme="pps"))
    await ledger.start()
    ledger.add(share("alice", 1000, time.time()))
    assert not await ledger.flush()  # nothing is credited at an unknown value...
    assert "network difficulty" in ledger.stats().last_error
    ledger.set_network(1e6, subsidy_sat=312_500_000)
    await flush_until_done(ledger)   # ...and nothing is lost either
    assert await ledger.reader.balances() == {"alice": 309_375_000}  # 3.125e8 msat x 99%
    await ledger.stop()


def test_scheme_arithmetic() -> None:
    assert block_subsidy_sat(0) == 5_000_000_000
    assert block_subsidy_sat(840_000) == 312_500_000
    assert block_subsidy_sat(64 * 210_000) == 0
    assert share_value_msat(1000, 1e6, 312_500_000, 0.0, 0.0) == 312_500_000
    assert share_value_msat(1000, 0, 312_500_000, 0.0, 0.0) == 0
    # Rounding: 1 sat split three ways: 333 msat each, 1 msat remainder to the pool.
    assert split_reward(1, {"a": 1, "b": 1, "c": 1}, 0.0, "@pool") == {"a": 333, "b": 333, "c": 333, "@pool": 1}
    assert pplns_window([(10.0, {"a": 10.0}), (10.0, {"b": 4.0, "c": 6.0})], 15) == {"a": 10.0, "b": 2.0, "c": 3.0}
    assert pplns_window([(10.0, {"a": 10.0})], 100) == {"a": 10.0}  # a short log pays what exists
    ratio = FeeRatio(window_blocks=2)
    ratio.observe(840_000, 31_250_000)
    ratio.observe(840_001, 93_750_000)
    assert ratio.ratio == pytest.approx(0.2)
    ratio.observe(840_002, 0)  # the oldest block leaves the window
    assert ratio.ratio == pytest.approx(0.15)
    with pytest.raises(ValueError):
        ratio.observe(840_003, -1)


async def paid_ledger(redis_url: str, journal_dir: Path) -> Ledger:
    node = Node()
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(pplns_factor=2.5, threshold_sat=1_500_000_000),
                         confirmations=node)
    await ledger.start()
    await pplns_history(ledger, time.time() - 100)
    node.confirmations[BLOCK] = 100
    await ledger.watcher.poll_once()  # type: ignore[union-attr]
    return ledger


def address(account: str) -> str:
    return "bcrt1q" + account


async def test_payout_batch_export_and_threshold(redis_url: str, journal_dir: Path, tmp_path: Path) -> None:
    ledger = await paid_ledger(redis_url, journal_dir)
    batch = await ledger.payouts.create_batch(address_for=address)
    assert batch is not None
    # Threshold 15 BTC: alice 17.82 and carol 19.8 qualify, bob (11.88) and @pool do not.
    assert [(p.account, p.address, p.amount_sat) for p in batch.payments] == [
        ("alice", "bcrt1qalice", 1_782_000_000), ("carol", "bcrt1qcarol", 1_980_000_000)]
    balances = await ledger.reader.balances()
    assert "alice" not in balances and "carol" not in balances and balances["bob"] == 1_188_000_000_000
    assert await ledger.payouts.create_batch(address_for=address) is None  # nothing left above it
    json_path, csv_path = ledger.payouts.export_batch(batch, tmp_path)
    assert json.loads(json_path.read_text())["total_sat"] == 3_762_000_000
    rows = list(csv.reader(csv_path.open()))
    assert rows == [["account", "address", "amount_sat", "amount_btc"],
                    ["alice", "bcrt1qalice", "1782000000", "17.82000000"],
                    ["carol", "bcrt1qcarol", "1980000000", "19.80000000"]]
    assert await ledger.payouts.verify() == {}
    assert await ledger.payouts.cancel_batch(batch.key)
    assert not await ledger.payouts.cancel_batch(batch.key)  # once only
    assert (await ledger.reader.balances())["alice"] == 1_782_000_000_000
    await ledger.stop()


async def test_sendmany_retry_after_lost_reply_never_pays_twice(redis_url: str, journal_dir: Path) -> None:
    ledger = await paid_ledger(redis_url, journal_dir)
    batch = await ledger.payouts.create_batch(address_for=address)
    assert batch is not None
    wallet = WalletStandIn()
    await wallet.start()
    try:
        async with aiohttp.ClientSession() as session:
            rpc = rpc_client(session, wallet.url)
            wallet.drop_after_send = True  # the wallet sends, the reply is lost
            with pytest.raises(aiohttp.ClientError):
                await ledger.payouts.send_batch(batch.key, rpc)
            assert (await ledger.payouts.batch(batch.key)).status == "sending"
            txid = await ledger.payouts.send_batch(batch.key, rpc, resend_after_s=0)
            assert await ledger.payouts.send_batch(batch.key, rpc) == txid  # and again: no new call
    finally:
        await wallet.stop()
    assert len(wallet.sends()) == 1
    (params,) = wallet.sends()
    assert params[1] == {"bcrt1qalice": "17.82000000", "bcrt1qcarol": "19.80000000"}
    assert params[3] == f"geostratum-payout:{batch.key}"
    assert {t["txid"] for t in wallet.transactions} == {txid}
    stored = await ledger.payouts.batch(batch.key)
    assert (stored.status, stored.txid, stored.attempts) == ("sent", txid, 1)
    await ledger.stop()


async def test_sendmany_refused_then_retried_and_slow_attempts_wait(redis_url: str, journal_dir: Path) -> None:
    ledger = await paid_ledger(redis_url, journal_dir)
    batch = await ledger.payouts.create_batch(address_for=address)
    assert batch is not None
    wallet = WalletStandIn()
    await wallet.start()
    try:
        async with aiohttp.ClientSession() as session:
            rpc = rpc_client(session, wallet.url)
            wallet.fail_next_send = (-6, "Insufficient funds")  # definite: nothing was sent
            with pytest.raises(WalletRpcError):
                await ledger.payouts.send_batch(batch.key, rpc)
            stored = await ledger.payouts.batch(batch.key)
            assert stored.status == "created" and "Insufficient funds" in stored.last_error
            wallet.drop_before_send = True  # ambiguous, and indeed nothing was sent
            with pytest.raises(aiohttp.ClientError):
                await ledger.payouts.send_batch(batch.key, rpc)
            with pytest.raises(PayoutError, match="retry after"):
                await ledger.payouts.send_batch(batch.key, rpc)  # too soon to conclude it failed
            txid = await ledger.payouts.send_batch(batch.key, rpc, resend_after_s=0)
    finally:
        await wallet.stop()
    assert len(wallet.transactions) == 2 and {t["txid"] for t in wallet.transactions} == {txid}
    assert len(wallet.sends()) == 3  # refused, dropped before sending, sent
    await ledger.stop()


async def test_pplns_slices_are_trimmed_but_never_under_the_kept_windows(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(pplns_factor=2.0, pplns_keep_windows=1.0))
    ledger.set_network(100.0, height=1)  # keep = 1 x 2 x 100 = 200 difficulty
    await ledger.start()
    base = time.time() - 200
    for n in range(6):
        ledger.add(share("alice", 100, base + 20 * n))
        await flush_until_done(ledger)
    ledger._last_trim = 0.0
    await flush_until_done(ledger)
    client = ledger.client
    first, cur = int(await client.get("{gs:pool}:pplns:first")), int(await client.get("{gs:pool}:pplns:cur"))
    assert (first, cur) == (5, 6)  # slices 1-4 dropped, 200 difficulty kept
    assert float(await client.get("{gs:pool}:pplns:sum")) == 200.0
    assert not await client.exists("{gs:pool}:pplns:sl:4") and await client.exists("{gs:pool}:pplns:sl:5")
    await ledger.stop()
