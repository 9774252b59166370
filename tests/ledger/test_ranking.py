"""The ranking by hashrate against a fleet whose figures are known by hand: written through the real
Ledger into a real redis-server, ranked by the 5-minute figure (not by the work summed), warming-up
workers after the others, and the rank window kept equal to a fresh sum as it moves and as shares
arrive."""

from __future__ import annotations

import math
import time
from pathlib import Path

import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster

from pool.shares.hashrate import HASHES_PER_DIFFICULTY
from pool.shares.ledger import Ledger
from pool.shares.ranking import RANK_WINDOW_S, rank_key
from pool.stratum.events import ShareRecord
from tests.ledger.conftest import RedisCluster
from tests.ledger.support import flush_until_done, make_ledger


def _now() -> float:
    """A time 30 s into a minute: the 5-minute window then starts 4 min 30 s back (at a minute)."""
    return math.floor(time.time() / 60) * 60 - 60 + 30


def _shares(ledger: Ledger, worker: str, difficulty: float, every: float, start: float, end: float,
            authorized: float = 0.0) -> int:
    count = 0
    t = start
    while t <= end:
        ledger.add(ShareRecord(timestamp=t, account=worker.split(".")[0], worker=worker, difficulty=difficulty,
                               share_difficulty=difficulty, height=1, authorized_at=authorized))
        count += 1
        t += every
    return count


def _fleet(ledger: Ledger, now: float) -> None:
    """The window is [now - 270, now]. By summed work the order would be young.one (1e6), old.warm
    (15 x 1,000), old.big, old.mid, young.fast, auth.early, auth.late; by the figure it is EXPECTED."""
    _shares(ledger, "old.big", 8.0, 2.0, now - 1200, now)        # 8 / 2 s: 4 x 2^32 H/s
    _shares(ledger, "old.mid", 4.0, 2.0, now - 1200, now)        # 2 x 2^32 H/s
    _shares(ledger, "young.fast", 8.0, 1.0, now - 60, now)       # first share 60 s ago: 8 x 2^32 H/s
    _shares(ledger, "old.warm", 1000.0, 18.0, now - 1200, now)   # 15 shares in the window: warming up
    _shares(ledger, "young.one", 1e6, 1.0, now - 10, now - 10)   # its one share starts its clock: 0 H/s
    # Observed from their authorize: all shares count. Early: 51 x 8 over the window's 270 s (not
    # 50 x 8 in 100 s from its first share); late: 31 x 8 in the 40 s since it.
    _shares(ledger, "auth.early", 8.0, 2.0, now - 100, now, authorized=now - 1000)
    _shares(ledger, "auth.late", 8.0, 1.0, now - 30, now, authorized=now - 40)
    _shares(ledger, "gone.away", 64.0, 1.0, now - 900, now - 400)  # nothing in the window


EXPECTED = ["young.fast", "auth.late", "old.big", "old.mid", "auth.early", "old.warm", "young.one"]


async def _check_against_figures(ledger: Ledger, now: float, names: list[str]) -> list[str]:
    """The ranking's figures are the 5-minute figures the API shows for the same workers, and its
    order is rank_key's over those."""
    reader = ledger.reader
    top = await reader.ranking.top(reader.client, "w", ledger.keys.all_shards(), 10, now=now)
    shown = {}
    for name in names:
        tag = ledger.keys.shard(name.split(".")[0])
        shown[name] = (await reader.hashrate.windows(reader.client, tag, ["w:" + name], now=now))["w:" + name].m5
    assert dict(top) == {n: f for n, f in shown.items() if f.shares}
    assert [n for n, _ in top] == sorted(dict(top), key=lambda n: rank_key(n, shown[n]), reverse=True)
    by_shard: dict[str, list[str]] = {}
    for name in names:
        by_shard.setdefault(ledger.keys.shard(name.split(".")[0]), []).append(name)
    of = await reader.ranking.figures_of(reader.client, "w", by_shard, now=now)
    assert {n: f for n, f in of.items() if f.shares} == dict(top)
    return [n for n, _ in top]


async def test_top_workers_ranked_by_the_five_minute_figure(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()
    now = _now()
    _fleet(ledger, now)
    await flush_until_done(ledger)
    reader = ledger.reader
    top = dict(await reader.ranking.top(reader.client, "w", ledger.keys.all_shards(), 10, now=now))
    assert list(top) == EXPECTED
    # By hand: 270 s covered; old.big has 136 shares of 8 (now - 270 .. now every 2 s).
    big = top["old.big"]
    assert (big.shares, big.covered_seconds, big.warming_up) == (136, 270.0, False)
    assert big.hashrate == 136 * 8 * HASHES_PER_DIFFICULTY / 270
    fast = top["young.fast"]                    # 61 shares, the first not counted, over 60 s
    assert (fast.shares, fast.covered_seconds, fast.first_share_excluded) == (61, 60.0, True)
    assert fast.hashrate == 60 * 8 * HASHES_PER_DIFFICULTY / 60
    assert (top["old.warm"].shares, top["old.warm"].warming_up) == (15, True)
    assert (top["young.one"].hashrate, top["young.one"].warming_up) == (0.0, True)
    early, late = top["auth.early"], top["auth.late"]
    assert (early.hashrate, early.first_share_excluded) == (51 * 8 * HASHES_PER_DIFFICULTY / 270, False)
    assert (late.hashrate, late.covered_seconds) == (31 * 8 * HASHES_PER_DIFFICULTY / 40, 40.0)
    two = await reader.ranking.top(reader.client, "w", ledger.keys.all_shards(), 2, now=now)
    assert [n for n, _ in two] == EXPECTED[:2]
    accounts = await reader.ranking.top(reader.client, "a", ledger.keys.all_shards(), 10, now=now)
    # young: 62 shares of 1,000,488 since its first 60 s ago, that one not counted; old: 16,632 in 270 s;
    # auth (authorized 1,000 s ago): 656 in 270 s.
    assert [a for a, _ in accounts] == ["young", "old", "auth"]
    await _check_against_figures(ledger, now, [*EXPECTED, "gone.away"])
    await ledger.stop()


async def test_rank_window_moves_and_takes_new_shares(redis_url: str, journal_dir: Path) -> None:
    """Read once (the window is built), then shares arrive (added to its sums), then the window moves
    on by minutes (the minutes that left it are taken out): each time it equals the figures read
    from the buckets, and equals a window built afresh."""
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()
    now = _now()
    _fleet(ledger, now)
    await flush_until_done(ledger)
    names = [*EXPECTED, "gone.away", "late.comer"]
    assert await _check_against_figures(ledger, now, names) == EXPECTED
    # New shares while the window exists: a late comer faster than everyone, old.warm leaves warming up.
    later = now + 150
    _shares(ledger, "late.comer", 64.0, 1.0, now + 60, later)
    _shares(ledger, "old.warm", 1000.0, 4.0, now + 4, later)
    _shares(ledger, "old.big", 8.0, 2.0, now + 2, later)
    await flush_until_done(ledger)
    # The window moved 2 minutes to [now - 150, later]: old.warm has 8 + 37 shares (45,000 in 300 s),
    # late.comer 90 of 64 counted in 90 s, young.fast 60 of 8 in 210 s, old.big 151 of 8, auth.early 51
    # of 8 in 300 s, auth.late 31 of 8 in the 190 s since its authorize, old.mid 76 of 4.
    order = await _check_against_figures(ledger, later, names)
    assert order == ["old.warm", "late.comer", "old.big", "young.fast", "auth.early", "auth.late", "old.mid",
                     "young.one"]
    client = aioredis.Redis.from_url(redis_url)
    try:
        moved = await ledger.reader.ranking.top(ledger.reader.client, "w", ledger.keys.all_shards(), 10, now=later)
        await client.delete(*[ledger.keys.rank_window(tag, "w") for tag in ledger.keys.all_shards()])
        fresh = await ledger.reader.ranking.top(ledger.reader.client, "w", ledger.keys.all_shards(), 10, now=later)
        assert moved == fresh
        # Far on (the window lags past its limit: rebuilt) and back (a reader whose clock is behind).
        assert await _check_against_figures(ledger, later + 900, names) == []
        assert await _check_against_figures(ledger, later, names) == order
        # Nothing left of the minutes taken out: every name in the window's sums has shares in it.
        for tag in ledger.keys.all_shards():
            counts = await client.zrange(ledger.keys.rank_window(tag, "w") + ":n", 0, -1, withscores=True)
            assert all(score > 0 for _, score in counts)
    finally:
        await client.aclose()
    await ledger.stop()


async def test_ranking_on_a_cluster(cluster: RedisCluster, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, cluster.url, "cluster", urls=cluster.urls)
    await ledger.start()
    now = _now()
    _fleet(ledger, now)
    await flush_until_done(ledger)
    await ledger.stop()
    client = aiocluster.RedisCluster.from_url(cluster.url)
    try:
        top = await ledger.reader.ranking.top(client, "w", ledger.keys.all_shards(), 10, now=now)
    finally:
        await client.aclose()
    assert [n for n, _ in top] == EXPECTED
    assert all(f.window_seconds == RANK_WINDOW_S for _, f in top)
