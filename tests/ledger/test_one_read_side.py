"""One read side: the same shares give the same pool hashrate wherever it is read. A fleet of known
work goes through the real ledger and the real geo rollup into a real redis-server; the pool's
windows, the region windows (API, /metrics, dashboard, map all read pool_regions) and the ports'
split agree exactly, cover no more than their window, and their intervals hold the truth."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from pool.admin_wiring.metrics import port_rates
from pool.config.geo import GeoConfig
from pool.config.ledger import LedgerConfig
from pool.geo.rollup import GeoRollup
from pool.geo.store import pool_regions
from pool.shares.hashrate import WINDOW_FIELDS, WINDOWS, HashrateBook, hashrate_figure, observation_start
from pool.shares.keys import Keys
from pool.stratum.events import ShareRecord
from tests.ledger.support import flush_until_done, make_ledger

H = 2**32


def fleet(now: float) -> list[ShareRecord]:
    """Texas: difficulty 8 every 2 s for 2 h; Bavaria: difficulty 4 every second for the last 40 min.
    Truth over the last 40 minutes: 4 + 4 = 8 difficulty per second."""
    records = [ShareRecord(timestamp=now - 7200 + 2 * k, account="tx", worker="tx.rig", difficulty=8.0,
                           share_difficulty=9.0, height=1, country="US", subdivision="Texas") for k in range(3600)]
    records += [ShareRecord(timestamp=now - 2400 + k, account="by", worker="by.rig", difficulty=4.0,
                            share_difficulty=5.0, height=1, country="DE", subdivision="Bavaria")
                for k in range(2400)]
    return records


async def test_regions_sum_exactly_to_the_pool_in_every_window(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url)
    rollup = GeoRollup(GeoConfig())
    ledger.add_contributor(rollup)
    await ledger.start()
    try:
        now = time.time()
        for record in fleet(now):
            ledger.add(record)
        await flush_until_done(ledger)
        book, client = ledger.reader.hashrate, ledger.client
        pool = await book.pool_windows(client, now=now)
        for name, seconds in WINDOWS.items():
            # 1m included: regions read the rollups' 10 s buckets at the pool's 10 s edges.
            figure = getattr(pool, WINDOW_FIELDS[name])
            live = await pool_regions(client, book, rollup.keys, seconds, now)
            assert live.covered_seconds == pytest.approx(figure.covered_seconds), name
            assert 0 < figure.covered_seconds <= seconds, name
            assert [r.figure.covered_seconds for r in live.items] == pytest.approx([figure.covered_seconds] * 2)
            assert sum(r.figure.shares for r in live.items) == figure.shares, name
            assert sum(r.figure.hashrate for r in live.items) == pytest.approx(figure.hashrate, rel=1e-12), name
            assert sum(r.figure.difficulty for r in live.items) == figure.difficulty, name
            # Edges: 10 s for 1m, a minute up to an hour, 10 minutes beyond (no fine buckets a day back).
            edge = 10 if seconds <= 60 else 60 if seconds <= 3600 else 600
            assert seconds - edge <= now - live.start <= seconds, name
        # Against the truth: 8 difficulty per second over the last 5 and 15 minutes; over the hour's
        # observed seconds Texas's 4 plus Bavaria's 4 x 2400 s of them.
        for figure in (pool.m5, pool.m15, pool.h1):
            truth = (4 + 4 * min(2400.0, figure.covered_seconds) / figure.covered_seconds) * H
            assert figure.low <= truth <= figure.high
            assert figure.hashrate == pytest.approx(truth, rel=0.02)
        hour = {r.subdivision: r.figure for r in (await pool_regions(client, book, rollup.keys, 3600, now)).items}
        assert hour["Texas"].low <= 4 * H <= hour["Texas"].high
        # Bavaria mined 40 of the hour's minutes: its hour average is 4 x 2400 / 3600 difficulty per second.
        assert hour["Bayern"].low <= 4 * H * 2400 / 3600 <= hour["Bayern"].high
    finally:
        await ledger.stop()


def test_ports_split_the_pool_figure() -> None:
    ports = port_rates(1000.0, {3333: 30.0, 3334: 10.0, 9999: 5.0}, [3333, 3334])   # 9999: not listening now
    assert [(p.port, p.hashrate) for p in ports] == [(3333, 750.0), (3334, 250.0)]
    assert [p.hashrate for p in port_rates(1000.0, {}, [3333])] == [0.0]


def test_the_share_that_starts_a_workers_clock_is_not_counted() -> None:
    # A 1 kH/s miner at difficulty 4 (one share per 17.2 s on average) seen for 25 s since its first
    # share: counting that share read 17 kH/s before; it is 0 with an upper bound now.
    one = hashrate_figure(60, 1000.0, 1045.0, 4.0, 1, first_observed=1020.0, first_is_share=True)
    assert one.first_share_excluded and one.hashrate == 0.0 and one.warming_up
    assert one.high == pytest.approx(3.6889 * 4 * H / 25, rel=0.01)
    # A pool's start (not a share) and a worker seen since before the window keep every share.
    assert hashrate_figure(60, 1000.0, 1045.0, 4.0, 1, first_observed=1020.0).hashrate == pytest.approx(4 * H / 25)
    kept = hashrate_figure(60, 1000.0, 1045.0, 8.0, 2, first_observed=990.0, first_is_share=True)
    assert not kept.first_share_excluded and kept.hashrate == pytest.approx(8 * H / 45)


def test_the_young_worker_estimate_is_unbiased() -> None:
    """Simulated Poisson miners of known rate, each seen from its first share for 30 s: the mean
    estimate holds the truth (counting the first share overstates it by half here)."""
    rng = random.Random(11)
    rate, horizon, kept, counted = 0.5, 30.0, [], []
    for _ in range(4000):
        t, arrivals = 0.0, []
        while True:
            t += rng.expovariate(rate)
            if t > 1000.0:
                break
            arrivals.append(t)
        if not arrivals:
            continue
        first, now = arrivals[0], arrivals[0] + horizon
        n = sum(1 for a in arrivals if a <= now)
        figure = hashrate_figure(3600, now - 3600, now, float(n), n, first_observed=first, first_is_share=True)
        kept.append(figure.hashrate / H)
        counted.append(n / horizon)
    assert sum(kept) / len(kept) == pytest.approx(rate, rel=0.03)
    assert sum(counted) / len(counted) > rate * 1.05


def test_a_worker_observed_from_its_authorize_is_unbiased() -> None:
    """The same simulated Poisson miners, each observed from its authorize (a time fixed before any
    share) for 30 s: every share counts (N / T) and the mean estimate holds the truth; the ones with
    no share yet read 0 with an upper bound instead of being left out."""
    rng = random.Random(11)
    rate, horizon, estimates = 0.5, 30.0, []
    for _ in range(4000):
        t, n = rng.expovariate(rate), 0
        while t <= horizon:
            n += 1
            t += rng.expovariate(rate)
        start, excluded = observation_start(first=None if n == 0 else horizon - 1.0, authorized=0.0)
        figure = hashrate_figure(3600, horizon - 3600, horizon, float(n), n, first_observed=start,
                                 first_is_share=excluded)
        assert not figure.first_share_excluded and figure.covered_seconds == horizon
        assert figure.high is not None and figure.high > 0
        estimates.append(figure.hashrate / H)
    assert sum(estimates) / len(estimates) == pytest.approx(rate, rel=0.03)
    # Without an authorize time the first share starts the clock (and is left out).
    assert observation_start(first=12.0, authorized=None) == (12.0, True)
    assert observation_start(first=12.0, authorized=15.0) == (12.0, True)     # older shares than the authorize


async def test_workers_and_accounts_are_observed_from_their_authorize(redis_url: str, journal_dir: Path) -> None:
    """Shares carry their worker's authorize time; through the real ledger into Redis, a worker's and
    its account's windows run from it (durably: a restarted process with a later authorize keeps it),
    count every share, and a worker whose shares do not say keeps the first-share rule."""
    now = time.time()
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()

    def record(ts: float, worker: str, authorized_at: float) -> ShareRecord:
        return ShareRecord(timestamp=ts, account=worker.split(".")[0], worker=worker, difficulty=4.0,
                           share_difficulty=5.0, height=1, authorized_at=authorized_at)

    try:
        # acct.a authorized 95 s ago, first share 15 s later, then one every 10 s (9 shares); acct.b
        # authorized 50 s ago, shares 45 s and 5 s ago; old.rig's shares do not say (40 s and 20 s ago).
        for k in range(9):
            ledger.add(record(now - 80 + 10 * k, "acct.a", now - 95))
        ledger.add(record(now - 45, "acct.b", now - 50))
        ledger.add(record(now - 5, "acct.b", now - 50))
        ledger.add(record(now - 40, "old.rig", 0.0))
        ledger.add(record(now - 20, "old.rig", 0.0))
        await flush_until_done(ledger)
    finally:
        await ledger.stop()
    again = make_ledger(journal_dir, redis_url)
    await again.start()
    try:
        again.add(record(now - 1, "acct.a", now - 3))       # a reconnect on a restarted process
        await flush_until_done(again)
        book, client, keys = again.reader.hashrate, again.client, again.keys
        tag = keys.shard("acct")
        figures = await book.windows(client, tag, ["w:acct.a", "w:acct.b", "a:acct"], now=now)
        worker = figures["w:acct.a"].m5
        assert (worker.shares, worker.covered_seconds, worker.first_share_excluded) == (10, pytest.approx(95.0), False)
        assert worker.hashrate == pytest.approx(10 * 4 * H / 95)
        late = figures["w:acct.b"].m5
        assert (late.shares, late.covered_seconds) == (2, pytest.approx(50.0))
        account = figures["a:acct"].m5           # from the earliest authorize of its workers
        assert (account.shares, account.covered_seconds) == (12, pytest.approx(95.0))
        assert account.hashrate == pytest.approx(12 * 4 * H / 95) and not account.first_share_excluded
        old = (await book.windows(client, keys.shard("old"), ["w:old.rig"], now=now))["w:old.rig"].m5
        assert old.first_share_excluded and (old.shares, old.covered_seconds) == (2, pytest.approx(40.0))
        assert old.hashrate == pytest.approx(4 * H / 40)
    finally:
        await again.stop()


async def test_a_history_step_is_divided_by_the_minutes_the_pool_ran(redis_url: str) -> None:
    """24 h history in 20-minute steps; the pool started 3 minutes before now, 15 minutes into the
    step in progress: that step's 3 minutes of shares are divided by 3 minutes, not by 18."""
    config, keys = LedgerConfig(), Keys("gs", 4)
    book = HashrateBook(keys, config)
    now = 1_800_000_000 + 1080          # 1,800,000,000 is a multiple of 1200
    client = aioredis.Redis.from_url(redis_url)
    try:
        for t in range(now - 180, now):
            await client.hincrby(keys.bucket(keys.pool, config.coarse_bucket_s, t // 600 * 600), "d",
                                 10 * config.bucket_units)
            await client.hincrby(keys.bucket(keys.pool, config.coarse_bucket_s, t // 600 * 600), "n", 1)
        await client.zadd(keys.first_seen(keys.pool), {"d": now - 180})
        history = await book.history(client, keys.pool, "d", 86400, now=float(now))
    finally:
        await client.aclose()
    assert history.step_seconds == 1200
    last = history.points[-1]
    assert (last.t, last.seconds, last.shares) == (1_800_000_000, pytest.approx(180.0), 180)
    assert last.hashrate == pytest.approx(10 * H)
    assert all(p.seconds == 0 and p.hashrate == 0 for p in history.points[:-1])
