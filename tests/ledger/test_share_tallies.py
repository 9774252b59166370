"""Per-worker share counts on a real redis-server: accepted from the batches' records, rejected (by
reason) from the sessions' counters taken into the same batches, through a restart with Redis down
(journal replay) and against shares that were never flushed."""

from __future__ import annotations

import time
from pathlib import Path

from pool.shares.tallies import WorkerTally
from pool.stratum.events import ShareRecord
from pool.stratum.session_records import Counters, drain_worker_rejects
from tests.ledger.support import flush_until_done, make_ledger
from tests.support.waiting import wait_for


def share(worker: str, ts: float, country: str = "ZZ", subdivision: str = "",
          firmware: str = "unknown") -> ShareRecord:
    return ShareRecord(timestamp=ts, account=worker.split(".", 1)[0], worker=worker, difficulty=1.0,
                       share_difficulty=2.0, height=100, country=country, subdivision=subdivision, firmware=firmware)


def reject(counters: Counters, worker: str, key: str, n: int = 1) -> None:
    """What a session's reject does to its port's counters (pool.stratum.submit._count_reject)."""
    pending = counters.worker_rejects.setdefault(worker, {})
    pending[key] = pending.get(key, 0) + n


async def test_counts_per_worker_and_account(redis_url: str, journal_dir: Path) -> None:
    ports = [Counters(), Counters()]
    ledger = make_ledger(journal_dir, redis_url)
    ledger.tallies.rejects = lambda: drain_worker_rejects(ports)
    await ledger.start()
    t0 = time.time() - 100
    for i in range(7):
        ledger.add(share("alice.a", t0 + i))
    for i in range(3):          # its firmware and region as its newest share was tagged
        ledger.add(share("alice.b", t0 + 10 + (2 - i), "DE", "Hessen" if i else "Bayern", "Bitaxe"))
    ledger.add(share("bob.x", t0 + 20))
    reject(ports[0], "alice.a", "stale", 2)
    reject(ports[1], "alice.a", "stale")
    reject(ports[1], "alice.a", "low_difficulty")
    reject(ports[0], "carol.only", "duplicate", 4)      # a worker with rejects and no accepted share
    before = time.time()
    await flush_until_done(ledger)
    assert all(not c.worker_rejects for c in ports)     # taken into the batch
    client = ledger.client
    counts = await ledger.tallies.workers(client, ["alice.a", "alice.b", "bob.x", "carol.only", "nobody.here"])
    assert counts["alice.a"] == WorkerTally(accepted=7, rejected=4, since=t0)
    assert counts["alice.b"] == WorkerTally(accepted=3, rejected=0, since=t0 + 10, firmware="Bitaxe",
                                            country="DE", subdivision="Bayern")
    assert counts["bob.x"] == WorkerTally(accepted=1, rejected=0, since=t0 + 20)
    assert counts["carol.only"].accepted == 0 and counts["carol.only"].rejected == 4
    assert counts["carol.only"].since is not None and before <= counts["carol.only"].since <= time.time()
    assert counts["nobody.here"] == WorkerTally(accepted=0, rejected=0, since=None)
    assert await ledger.tallies.reasons(client, ["alice.a", "alice.b", "carol.only"]) == {
        "alice.a": {"stale": 3, "low_difficulty": 1}, "carol.only": {"duplicate": 4}}
    accounts = await ledger.tallies.account_rejected(client, ["alice", "bob", "carol", "dan"])
    assert accounts == {"alice": (4, t0), "bob": (0, t0 + 20), "carol": (4, counts["carol.only"].since),
                        "dan": (0, None)}

    # More of both: the counts add up, the start of counting stays.
    ledger.add(share("alice.a", t0 + 30))
    reject(ports[1], "alice.a", "stale")
    await flush_until_done(ledger)
    assert (await ledger.tallies.workers(client, ["alice.a"]))["alice.a"] == WorkerTally(accepted=8, rejected=5,
                                                                                          since=t0)
    await ledger.stop()


async def test_counts_survive_a_restart_with_redis_down(redis_url: str, journal_dir: Path) -> None:
    """Shares and rejects cut into a batch while Redis is down are journaled: the next start applies
    them once, and applying the journal again adds nothing."""
    ports = [Counters()]
    down = make_ledger(journal_dir, "redis://127.0.0.1:1/0")          # nothing listens on port 1
    down.tallies.rejects = lambda: drain_worker_rejects(ports)
    await down.start()
    now = time.time()
    for i in range(5):
        down.add(share("erin.r", now + i))
    reject(ports[0], "erin.r", "stale", 2)
    assert not await down.flush()                                       # cut and journaled, not applied
    assert not ports[0].worker_rejects
    await down.stop(timeout=0.2)
    for _ in range(2):                                                  # a second start replays nothing new
        again = make_ledger(journal_dir, redis_url)
        await again.start()
        await flush_until_done(again)
        counts = await again.tallies.workers(again.client, ["erin.r"])
        assert counts["erin.r"] == WorkerTally(accepted=5, rejected=2, since=now)
        await again.stop()


async def test_rejects_alone_are_counted(redis_url: str, journal_dir: Path) -> None:
    """A worker whose every share is refused: its rejects ride a batch of their own, cut by the idle
    cutter, and a stop keeps the last ones."""
    ports = [Counters()]
    ledger = make_ledger(journal_dir, redis_url)
    ledger.tallies.rejects = lambda: drain_worker_rejects(ports)
    await ledger.start()
    reject(ports[0], "gil.bad", "low_difficulty", 3)

    async def counted(n: int) -> bool:
        return (await ledger.tallies.workers(ledger.client, ["gil.bad"]))["gil.bad"].rejected == n

    await wait_for(lambda: counted(3), 10, "the idle cutter to count the rejects")
    reject(ports[0], "gil.bad", "low_difficulty", 2)
    await ledger.stop()
    again = make_ledger(journal_dir, redis_url)
    await again.start()
    assert (await again.tallies.reasons(again.client, ["gil.bad"])) == {"gil.bad": {"low_difficulty": 5}}
    await again.stop()
