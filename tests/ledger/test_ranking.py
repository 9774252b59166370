"""The ranking by hashrate against a fleet whose figures are known by hand: written through the real
Ledger into a real redis-server, ranked by the 5-minute figure (not by the work summed), warming-up
workers after the others, and the rank window kept equal to a fresh sum as it moves and as shares
arrive."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster

from pool.shares.hashrate import HASHES_PER_DIFFICULTY
from pool.shares.ledger import Ledger
from pool.shares.lua import RANK_SLOTS
from pool.shares.ranking import RANK_WINDOW_S, RankKeeper, rank_key
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


def _random_fleet(ledger: Ledger, rng: random.Random, workers: int, start: float, end: float) -> None:
    """Workers of many rates over [start, end]: some older than the window, some young (first share
    inside it), some that stopped, some with an authorize time, integer difficulties (exact sums)."""
    for i in range(workers):
        name = f"acct{i % 37:02d}.rig{i:03d}"
        difficulty = float(2 ** rng.randrange(0, 8))
        every = rng.choice([1.5, 3.0, 7.0, 13.0, 29.0])
        first = rng.uniform(start, end - 20)
        last = end if i % 9 else rng.uniform(first, end)
        authorized = first - rng.uniform(0, 120) if i % 4 == 0 else 0.0
        _shares(ledger, name, difficulty, every, first, last, authorized=authorized)


async def _brute_force(ledger: Ledger, names: list[str], now: float, limit: int) -> list[tuple[str, object]]:
    """Every worker's 5-minute figure read from its buckets (the figure the API shows), ranked by
    rank_key: what the rank windows must give."""
    reader = ledger.reader
    by_shard: dict[str, list[str]] = {}
    for name in names:
        by_shard.setdefault(ledger.keys.shard(name.split(".")[0]), []).append("w:" + name)
    windows = await reader.hashrate.windows_by_tag(reader.client, by_shard, now)
    figures = [(name, windows["w:" + name].m5) for name in names if windows["w:" + name].m5.shares]
    figures.sort(key=lambda item: rank_key(*item), reverse=True)
    return figures[:limit]


async def _slots(ledger: Ledger) -> list[tuple[bytes | None, ...]]:
    client = ledger.reader.client
    return [tuple(await client.hmget(f"{ledger.keys.rank_base(tag, 'w')}:{slot}", ["from", "min"]))
            for tag in ledger.keys.all_shards() for slot in RANK_SLOTS]


async def test_top_hundred_equals_a_brute_force_ranking_across_minute_boundaries(
        redis_url: str, journal_dir: Path) -> None:
    """300 workers of many rates: the top 100 from the rank windows equal the top 100 of every
    worker's figure read from the buckets, before a minute boundary (the keeper has built the next
    minute's windows), after it (read from the prepared windows: no slot built or moved by the
    reader), with shares arriving in between, and a minute later without the keeper (the reader
    moves the windows itself)."""
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()
    try:
        rng = random.Random(11)
        t1 = _now() - 60                    # 30 s into a minute, 1 to 2 minutes ago
        _random_fleet(ledger, rng, 300, t1 - 600, t1)
        await flush_until_done(ledger)
        names = sorted({f"acct{i % 37:02d}.rig{i:03d}" for i in range(300)})
        reader = ledger.reader
        keeper = RankKeeper(reader.ranking, lambda: ledger.client, ledger.keys.all_shards())
        # Each shard's current and next windows, for workers and accounts: 16 x 2 x 2 slots built.
        assert await keeper.run_once(now=t1) == 2 * 2 * len(ledger.keys.all_shards())
        assert await keeper.run_once(now=t1) == 0        # both there: nothing to do
        top = await reader.ranking.top(reader.client, "w", ledger.keys.all_shards(), 100, now=t1)
        assert len(top) == 100
        assert top == await _brute_force(ledger, names, t1, 100)

        # Shares up to 10 s past the boundary, read there: from the window the keeper built.
        t2 = t1 + 40
        _random_fleet(ledger, rng, 300, t1 + 0.5, t2)
        await flush_until_done(ledger)
        prepared = await _slots(ledger)
        top = await reader.ranking.top(reader.client, "w", ledger.keys.all_shards(), 100, now=t2)
        assert await _slots(ledger) == prepared
        assert top == await _brute_force(ledger, names, t2, 100)

        # A minute on without the keeper: the reader moves the window across the boundary itself.
        t3 = t2 + 60
        _random_fleet(ledger, rng, 300, t2 + 0.5, t3)
        await flush_until_done(ledger)
        top = await reader.ranking.top(reader.client, "w", ledger.keys.all_shards(), 100, now=t3)
        assert top == await _brute_force(ledger, names, t3, 100)
        assert keeper.snapshot().passes == 2 and keeper.snapshot().failures == 0
    finally:
        await ledger.stop()
