"""Payout schemes with hand-checked numbers, the frozen PPLNS window, maturity and orphaning in Redis, with no
money there (the PostgreSQL books and payouts: tests/money)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pool.config.ledger import PayoutConfig
from pool.shares.ledger import Ledger
from pool.shares.schemes import FeeRatio, block_subsidy_sat, pplns_window, share_value_msat, split_reward
from pool.stratum.events import ShareRecord
from tests.ledger.support import flush_until_done, make_ledger
from tests.support.books import money_keys_in_redis

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


async def test_pplns_round_window_and_credits_keep_no_money_in_redis(redis_url: str, journal_dir: Path) -> None:
    """Redis holds the round, the frozen window and the block's status; the credits its scheme gives are
    computed from them for the PostgreSQL books (tests/money), and no balance is ever written here."""
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
    # 50 BTC - 1% = 49.5 BTC = 4.95e12 msat split 900 : 600 : 1000 of 2500; the fee to @pool.
    credited = {"alice": 1_782_000_000_000, "bob": 1_188_000_000_000, "carol": 1_980_000_000_000,
                "@pool": 50_000_000_000}
    assert await ledger.payouts.scheme_credits(BLOCK) == credited
    assert sum(credited.values()) == REWARD * 1000

    watcher = ledger.watcher
    assert watcher is not None
    node.confirmations[BLOCK] = 99
    assert await watcher.poll_once() == []
    node.confirmations[BLOCK] = 100
    (change,) = await watcher.poll_once()
    assert (change.old_status, change.new_status) == ("pending", "confirmed")
    assert await ledger.payouts.scheme_credits(BLOCK) is None   # only a pending block gives credits
    assert await watcher.poll_once() == []                      # a second pass moves nothing more
    node.confirmations[BLOCK] = -1  # reorged out after maturity
    (change,) = await watcher.poll_once()
    assert change.new_status == "orphaned"
    (block,) = await ledger.reader.blocks()
    assert block.status == "orphaned"
    assert await money_keys_in_redis(ledger.client, ledger.keys) == []
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
    assert not await ledger.client.sismember(ledger.keys.open_blocks, BLOCK)   # no longer watched
    assert await money_keys_in_redis(ledger.client, ledger.keys) == []
    await ledger.stop()


async def test_solo_credits_the_finder_and_keeps_no_balance(redis_url: str, journal_dir: Path) -> None:
    node = Node()
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(scheme="solo", fee_percent=2.0),
                         confirmations=node)
    await ledger.start()
    await pplns_history(ledger, time.time() - 100)
    # 50 BTC x 98% to the finder, 2% to the pool (what books would record, had the pool any).
    assert await ledger.payouts.scheme_credits(BLOCK) == {"carol": 4_900_000_000_000, "@pool": 100_000_000_000}
    node.confirmations[BLOCK] = 150
    (change,) = await ledger.watcher.poll_once()  # type: ignore[union-attr]
    assert change.new_status == "confirmed"
    assert await money_keys_in_redis(ledger.client, ledger.keys) == []
    await ledger.stop()


async def test_pps_waits_for_network_difficulty(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(scheme="pps"))
    await ledger.start()
    ledger.add(share("alice", 1000, time.time()))
    assert not await ledger.flush()  # nothing is credited at an unknown value...
    assert "network difficulty" in ledger.snapshot().last_error
    ledger.set_network(1e6, subsidy_sat=312_500_000)
    await flush_until_done(ledger)   # ...and nothing is lost either: the credit waits for the books
    ((_, fields),) = await ledger.client.xrange(ledger.keys.pps_outbox)
    assert json.loads(fields[b"credits"]) == {"alice": 309_375_000}  # 3.125e8 msat x 99%
    assert await money_keys_in_redis(ledger.client, ledger.keys) == []
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
