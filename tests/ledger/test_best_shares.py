"""Best shares on a real redis-server: per worker, account and pool, all time and per round, through a
block that closes the round, a restart (journal replay) and a record-beating log line."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import redis

from pool.native.work import DIFF1_TARGET, hash_difficulty
from pool.shares.best import BestShare, BestShares
from pool.shares.keys import Keys
from pool.stratum.events import ShareRecord
from tests.ledger.support import flush_until_done, make_ledger

HASH = "ab" * 32


def share(worker: str, reached: float, ts: float, credited: float = 1024.0) -> ShareRecord:
    return ShareRecord(timestamp=ts, account=worker.split(".", 1)[0], worker=worker, difficulty=credited,
                       share_difficulty=reached, height=100)


async def test_best_per_worker_account_pool_and_round(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()
    t0 = time.time() - 100
    for worker, reached, dt in [("alice.a", 5_000.0, 1), ("alice.a", 90_000.0, 2), ("alice.b", 40_000.0, 3),
                                ("bob.x", 70_000.0, 4), ("alice.b", 30_000.0, 5)]:
        ledger.add(share(worker, reached, t0 + dt))
    await flush_until_done(ledger)
    client = ledger.client
    alice = await ledger.best.account(client, "alice")
    assert alice.best.ever == BestShare(difficulty=90_000.0, at=t0 + 2, worker="alice.a")
    assert alice.best.round == alice.best.ever
    assert {w: p.ever.difficulty for w, p in alice.workers.items() if p.ever} == {"alice.a": 90_000.0,
                                                                                    "alice.b": 40_000.0}
    assert (await ledger.best.pool(client)).ever == BestShare(difficulty=90_000.0, at=t0 + 2, worker="alice.a")

    # A block closes the round: the next round's bests start empty, the all-time ones stay.
    ledger.add(share("bob.x", 80_000.0, t0 + 6))
    await ledger.record_block(HASH, 101, "bob", "bob.x", 5_000_000_000, 1.0, found_at=t0 + 6)
    ledger.add(share("alice.b", 50_000.0, t0 + 7))
    await flush_until_done(ledger)
    closed = await ledger.best.closed_round(client, HASH)
    assert closed == BestShare(difficulty=90_000.0, at=t0 + 2, worker="alice.a")
    alice = await ledger.best.account(client, "alice")
    assert alice.best.ever is not None and alice.best.ever.difficulty == 90_000.0
    assert alice.best.round == BestShare(difficulty=50_000.0, at=t0 + 7, worker="alice.b")
    assert alice.workers["alice.a"].round is None and alice.workers["alice.a"].ever is not None
    bob = await ledger.best.account(client, "bob")
    assert bob.best.ever is not None and bob.best.ever.difficulty == 80_000.0 and bob.best.round is None
    pool = await ledger.best.pool(client)
    assert pool.ever is not None and pool.ever.difficulty == 90_000.0
    assert pool.round is not None and pool.round.difficulty == 50_000.0
    # An unknown account reads as no record, not an error.
    nobody = await ledger.best.account(client, "nobody")
    assert nobody.best.ever is None and nobody.workers == {}
    await ledger.stop()


async def test_best_survives_restart_and_replay(redis_url: str, journal_dir: Path) -> None:
    """Shares journaled but never flushed (Redis down at stop) reach the books on the next start, and
    a batch applied again (the replay after a crash) leaves the maximum as it was."""
    ledger = make_ledger(journal_dir, "redis://127.0.0.1:1/0")     # nothing listens on port 1
    await ledger.start()
    now = time.time()
    ledger.add(share("carol.r", 123_456.0, now))
    await ledger.stop(timeout=0.2)
    again = make_ledger(journal_dir, redis_url)
    await again.start()
    await flush_until_done(again)
    carol = await again.best.account(again.client, "carol")
    assert carol.best.ever == BestShare(difficulty=123_456.0, at=now, worker="carol.r")
    # A lower share after the restart leaves the record where it was.
    again.add(share("carol.r", 1_000.0, now + 1))
    await flush_until_done(again)
    raw = redis.Redis.from_url(redis_url)
    assert raw.hget(again.best.shard_key("carol"), "a:carol") == b"123456"
    assert raw.hget(again.best.shard_key("carol"), "@a:carol") == f"{now!r} carol.r".encode()
    await again.stop()


async def test_a_record_is_logged_once_known(redis_url: str, journal_dir: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()
    now = time.time()
    ledger.add(share("dave.r", 10.0, now))
    await flush_until_done(ledger)
    with caplog.at_level(logging.INFO, logger="geostratum.best"):
        ledger.add(share("dave.r", 5.0, now + 1))          # not a record: no line
        await flush_until_done(ledger)
        assert not caplog.records
        ledger.add(share("dave.r", 99.5, now + 2))
        await flush_until_done(ledger)
    assert [r.getMessage() for r in caplog.records] == [
        "new best share for dave: difficulty 99.5 by dave.r (previous record 10)"]
    await ledger.stop()
    # A fresh process learns the record from Redis, so it logs only a share above it.
    seen: list[tuple[str, float, float]] = []
    fresh = BestShares(Keys("gs", ledger.config.shards), on_record=lambda a, b, p: seen.append((a, b.difficulty, p)))
    await fresh.load(ledger.client)
    fresh.ops([share("dave.r", 50.0, now + 3)])
    fresh.ops([share("dave.r", 200.0, now + 4)])
    assert seen == [("dave", 200.0, 99.5)]
    await ledger.client.aclose()


def test_share_difficulty_is_what_the_hash_reached() -> None:
    """diff-1 / hash: a hash equal to the diff-1 target is difficulty 1, half of it difficulty 2."""
    assert hash_difficulty(DIFF1_TARGET.to_bytes(32, "little")) == 1.0
    assert hash_difficulty((DIFF1_TARGET // 2).to_bytes(32, "little")) == 2.0
    # An infinitely hard hash (all zero) is stored as a finite number.
    ops = BestShares(Keys("gs", 4)).ops([share("e.r", float("inf"), 1.0)])
    assert all(v != float("inf") for op in ops for v in op.args if isinstance(v, float))


async def test_a_refused_block_candidate_counts_as_the_share_it_was(redis_url: str, journal_dir: Path) -> None:
    """A stale candidate the node refused carries no ShareRecord; its hash still sets the records."""
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()
    now = time.time()
    ledger.add(share("erin.r", 500.0, now))
    block_hash = f"{(DIFF1_TARGET // 4096):064x}"               # a hash of difficulty 4096 exactly
    ledger.best.note_candidate("erin", "erin.r", block_hash, now + 1)
    ledger.add(share("erin.r", 100.0, now + 2))                 # the next batch carries it
    await flush_until_done(ledger)
    erin = await ledger.best.account(ledger.client, "erin")
    assert erin.best.ever == BestShare(difficulty=DIFF1_TARGET / (DIFF1_TARGET // 4096), at=now + 1, worker="erin.r")
    assert erin.best.ever.difficulty == pytest.approx(4096.0, rel=1e-12)
    assert erin.best.round == erin.best.ever
    await ledger.stop()


async def test_a_batch_of_thousands_of_workers_keeps_every_best(redis_url: str, journal_dir: Path) -> None:
    """5,000 workers of one account in one batch are 15,000 arguments for the round's bests: more than
    one op may carry (MAX_OP_ARGS). Every worker's best still reaches Redis, and nothing is dropped."""
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()
    t0 = time.time() - 100
    for i in range(5000):
        ledger.add(share(f"farm.w{i}", 1000.0 + i, t0 + i / 1000))
    await flush_until_done(ledger)
    farm = await ledger.best.account(ledger.client, "farm")
    assert len(farm.workers) == 5000
    assert all(p.ever is not None and p.round is not None and p.ever.difficulty == 1000.0 + int(w[6:])
               and p.round == p.ever for w, p in farm.workers.items())
    assert farm.best.ever == BestShare(difficulty=5999.0, at=t0 + 4.999, worker="farm.w4999")
    assert ledger.snapshot().contributor_errors == 0
    await ledger.stop()
