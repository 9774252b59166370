"""Block candidates no node took, on a real redis-server: recorded through the ledger's journaled
batches (so a candidate refused while Redis is down, or just before a crash, still reaches Redis once),
listed newest first with the node's reason, and bounded by ledger.max_refused_blocks."""

from __future__ import annotations

import time
from pathlib import Path

from pool.shares.blocks import RefusedBlock
from pool.stratum.events import ShareRecord
from tests.ledger.support import flush_until_done, make_ledger


def refused(n: int, at: float, reason: str = "bad-txnmrklroot", node: str = "w1") -> RefusedBlock:
    return RefusedBlock(block_hash=f"{n:064x}", height=111 + n, account="alice", worker="alice.rig", node=node,
                        found_at=at, reward_sat=5_000_000_000, reason=reason)


async def test_refused_candidates_are_listed_once_newest_first_and_bounded(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url, max_refused_blocks=3)
    await ledger.start()
    t0 = time.time() - 100
    ledger.add(ShareRecord(timestamp=t0, account="alice", worker="alice.rig", difficulty=1.0,
                           share_difficulty=2.0, height=111))
    for n, reason in enumerate(["bad-txnmrklroot", "high-hash", "rpc-error -22: Block decode failed"]):
        ledger.record_refused(refused(n, t0 + n, reason))
    await flush_until_done(ledger)
    listed = await ledger.reader.refused_blocks(10)
    assert [(b.height, b.reason) for b in listed] == [(113, "rpc-error -22: Block decode failed"),
                                                      (112, "high-hash"), (111, "bad-txnmrklroot")]
    # The share before the candidates is in the books as usual (a refused batch covers no record).
    assert ledger.snapshot().shares_flushed == 1
    # Only the newest max_refused_blocks are kept.
    ledger.record_refused(refused(3, t0 + 3))
    await flush_until_done(ledger)
    assert [b.height for b in await ledger.reader.refused_blocks(10)] == [114, 113, 112]
    await ledger.stop()


async def test_a_candidate_refused_while_redis_is_down_reaches_it_after_a_restart(
        redis_url: str, journal_dir: Path) -> None:
    down = make_ledger(journal_dir, "redis://127.0.0.1:1/0")      # nothing listens on port 1
    await down.start()
    candidate = refused(7, time.time(), "bad-cb-height", node="w2")
    down.record_refused(candidate)
    await down.stop(timeout=0.2)
    again = make_ledger(journal_dir, redis_url)
    await again.start()
    await flush_until_done(again)
    assert await again.reader.refused_blocks(10) == [candidate]
    await again.stop()
    # A third start replays nothing more: the candidate is there once.
    third = make_ledger(journal_dir, redis_url)
    await third.start()
    await flush_until_done(third)
    assert len(await third.reader.refused_blocks(10)) == 1
    await third.stop()
