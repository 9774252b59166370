"""No accepted share is lost or counted twice: Redis killed mid-run, the pool killed -9 mid-run,
a batch half-applied when the process died. One Redis and a 3-master Redis Cluster."""

from __future__ import annotations

import asyncio
import mmap
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from pool.shares.ledger import Ledger, LedgerSnapshot
from pool.sim.redis_server import RedisProcess, free_port
from tests.ledger.conftest import RedisCluster
from tests.ledger.producer_proc import COUNTERS
from tests.ledger.support import (
    expected_countries,
    expected_totals,
    flush_until_done,
    make_ledger,
    read_totals,
    record,
)
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def assert_exact(url: str, mode: str, count: int) -> None:
    shares, diff, per_account, countries = read_totals(url, mode)
    want_shares, want_diff, want_accounts = expected_totals(count)
    assert (shares, diff) == (want_shares, want_diff)
    assert per_account == want_accounts
    assert countries == expected_countries(count)


async def produce(ledger: Ledger, stop: asyncio.Event, rate: int = 8000) -> int:
    """Feeds records at a steady rate until `stop`; returns how many add() calls returned."""
    handed = 0
    per_tick = rate // 100
    while not stop.is_set():
        for _ in range(per_tick):
            ledger.add(record(handed))
            handed += 1
        await asyncio.sleep(0.01)
    return handed


async def kill_redis_mid_run(ledger: Ledger, kill: callable, restart: callable) -> tuple[int, int]:
    await ledger.start()
    stop = asyncio.Event()
    producer = asyncio.create_task(produce(ledger, stop))
    # Kill only once batches are reaching Redis (a slow machine connects to a cluster late).
    await wait_for(lambda: ledger.snapshot().redis_up and ledger.snapshot().shares_flushed >= 2_500, 30,
                   "2,500 shares in Redis")
    kill()

    def outage_seen() -> LedgerSnapshot | None:
        snap = ledger.snapshot()
        return snap if not snap.redis_up and snap.queued_shares >= 1_000 else None

    down = await wait_for(outage_seen, 30, "the ledger to notice the outage and queue batches")
    await asyncio.to_thread(restart)
    # Keep producing until batches made after the restart have reached Redis too.
    restarted = ledger.snapshot()
    await wait_for(lambda: ledger.snapshot().redis_up
                   and ledger.snapshot().batches_flushed > restarted.batches_flushed
                   and ledger.snapshot().shares_added >= restarted.shares_added + 1_500,
                   30, "1,500 more shares and batches in Redis after the restart")
    stop.set()
    handed = await producer
    await flush_until_done(ledger)
    stats = ledger.snapshot()
    await ledger.stop()
    assert stats.shares_flushed == handed
    return handed, down.queued_shares


async def test_kill_redis_mid_run_single(durable_redis: RedisProcess, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, durable_redis.url)
    handed, queued_while_down = await kill_redis_mid_run(ledger, durable_redis.kill, durable_redis.start)
    assert handed >= 5_000 and queued_while_down >= 1_000      # a real load crossed the outage
    assert_exact(durable_redis.url, "single", handed)


async def test_kill_redis_mid_run_cluster(cluster: RedisCluster, journal_dir: Path) -> None:
    victim = cluster.node_for("{gs:pool}:tot")  # the node holding the pool totals
    ledger = make_ledger(journal_dir, cluster.url, "cluster", urls=cluster.urls)

    def restart() -> None:
        victim.start()
        cluster.wait_ok()

    handed, _ = await kill_redis_mid_run(ledger, victim.kill, restart)
    assert_exact(cluster.url, "cluster", handed)


def kill_pool_mid_run(url: str, mode: str, journal_dir: Path, tmp_path: Path) -> tuple[int, int]:
    """Runs the producer+ledger in a child, SIGKILLs it mid-run; returns (acked, inflight)."""
    counters = tmp_path / "counters"
    counters.write_bytes(bytes(COUNTERS.size))
    child = subprocess.Popen([sys.executable, str(ROOT / "tests/ledger/producer_proc.py"), "--url", url,
                              "--mode", mode, "--journal", str(journal_dir), "--counters", str(counters)],
                             cwd=ROOT)
    try:
        with open(counters, "r+b") as fh:
            shared = mmap.mmap(fh.fileno(), COUNTERS.size)
        deadline = time.monotonic() + 20
        # Let it run long enough that batches are applied, queued and pending at the kill.
        while COUNTERS.unpack_from(shared, 0)[1] < 15_000:
            assert child.poll() is None, "producer process died"
            assert time.monotonic() < deadline, "producer too slow"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        inflight, acked = COUNTERS.unpack_from(shared, 0)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return acked, inflight


async def restart_and_replay(url: str, mode: str, journal_dir: Path, urls: list[str] | None = None) -> Ledger:
    ledger = make_ledger(journal_dir, url, mode, urls=urls)
    await ledger.start()
    await flush_until_done(ledger)
    await ledger.stop()
    return ledger


def assert_exact_after_kill(url: str, mode: str, acked: int, inflight: int) -> None:
    shares = read_totals(url, mode)[0]
    # Every acknowledged add() is counted once. The one record whose add() had not returned at the
    # kill (inflight == acked + 1) counts if its os.write had happened: it was in the OS.
    allowed = {acked, acked + 1} if inflight == acked + 1 else {acked}
    assert shares in allowed, (shares, acked, inflight)
    assert_exact(url, mode, shares)


async def test_kill9_pool_mid_run_single(redis_url: str, journal_dir: Path, tmp_path: Path) -> None:
    acked, inflight = await asyncio.to_thread(kill_pool_mid_run, redis_url, "single", journal_dir, tmp_path)
    before = read_totals(redis_url)[0]
    assert before <= acked  # usually fewer: the kill leaves shares only the journal knows about
    await restart_and_replay(redis_url, "single", journal_dir)
    assert_exact_after_kill(redis_url, "single", acked, inflight)


async def test_kill9_pool_mid_run_cluster(cluster: RedisCluster, journal_dir: Path, tmp_path: Path) -> None:
    acked, inflight = await asyncio.to_thread(kill_pool_mid_run, cluster.url, "cluster", journal_dir, tmp_path)
    await restart_and_replay(cluster.url, "cluster", journal_dir, cluster.urls)
    assert_exact_after_kill(cluster.url, "cluster", acked, inflight)


@pytest.mark.parametrize("applied_groups", [0, 1, 3])
async def test_crash_between_groups_replays_exactly(redis_url: str, journal_dir: Path,
                                                    applied_groups: int) -> None:
    """A batch whose groups were only partly applied when the process died: the restart applies
    the missing groups and skips the applied ones."""
    dead_url = f"redis://127.0.0.1:{free_port()}/0"   # nothing listens: every batch stays queued
    first = make_ledger(journal_dir, dead_url)
    await first.start()
    for i in range(3000):
        first.add(record(i))
    assert not await first.flush()
    await first.stop(timeout=0.5)

    # "Crash" after `applied_groups` groups reached Redis: apply them by hand from the journal.
    from pool.shares.journal import Journal
    recovery = Journal(journal_dir / "test-node", 1 << 30).open()
    (batch,) = recovery.batches
    assert len(batch.groups) > 3
    probe = make_ledger(journal_dir / "unused", redis_url)
    client = probe.client
    for slot, blob in batch.groups[:applied_groups]:
        marker = probe.keys.marker_key(slot, batch.batch_id)
        assert await probe._apply(client, [marker], [3600, blob]) == 0
    await client.aclose()

    second = make_ledger(journal_dir, redis_url)
    await second.start()
    await flush_until_done(second)
    stats = second.snapshot()
    await second.stop()
    assert stats.groups_replayed == applied_groups
    assert_exact(redis_url, "single", 3000)


async def test_replaying_a_committed_batch_changes_nothing(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()
    for i in range(500):
        ledger.add(record(i))
    await flush_until_done(ledger)
    frame = ledger._journal.read_batch(next(iter(_batch_locations(ledger))))
    await ledger._apply_batch(frame)  # a lost reply: the same batch sent again
    stats = ledger.snapshot()
    await ledger.stop()
    assert stats.groups_replayed == len(frame.groups)
    assert_exact(redis_url, "single", 500)


def _batch_locations(ledger: Ledger) -> list[tuple[int, int]]:
    # The first batch frame is the first frame after the records of segment 1.
    from pool.shares.journal import _iter_frames
    data = (ledger._journal.directory / "seg-000000000001.wal").read_bytes()
    return [(1, off) for off, kind, _ in filter(None, _iter_frames(data)) if kind == b"B"]


async def test_redis_down_at_start_then_up(journal_dir: Path) -> None:
    server = RedisProcess()
    ledger = make_ledger(journal_dir, server.url)
    await ledger.start()  # Redis is not running yet: the ledger starts anyway
    for i in range(2000):
        ledger.add(record(i))
    # The ledger tries Redis, fails, and keeps the shares in its journal.
    await wait_for(lambda: ledger.snapshot().last_error, 30, "the ledger to fail its first attempt at Redis")
    assert not ledger.snapshot().redis_up
    assert ledger.snapshot().journal_bytes > 0
    server.start()
    try:
        await flush_until_done(ledger)
        await ledger.stop()
        assert_exact(server.url, "single", 2000)
        assert redis.Redis.from_url(server.url).exists("{gs:pool}:tot")
    finally:
        server.stop()
