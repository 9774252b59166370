"""Gap detection: an outage inside a window is not observed time. The pool's up marks (a heartbeat
per fine bucket from each process, and the buckets of every share batch) go through the real
ledger into a real redis-server; windows, chart steps, the regions and the day's export divide by
the seconds marked up, against a fleet of known rate."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from pool.config.geo import GeoConfig
from pool.config.ledger import LedgerConfig
from pool.geo.report import build_report
from pool.geo.rollup import GeoRollup
from pool.geo.store import pool_regions
from pool.shares.hashrate import HashrateBook
from pool.shares.keys import Keys
from pool.shares.uptime import UpMarks, UpTimeline, observed_in_period, read_timeline, up_by_day, up_key, write_marks
from pool.stratum.events import ShareRecord
from tests.ledger.support import flush_until_done, make_ledger

H = 2**32
CONFIG = LedgerConfig()


def test_a_timeline_counts_the_marked_buckets_and_parts_of_them() -> None:
    # Coarse buckets of 60 s in 10 s fine ones from t = 6000: buckets 6000, 6010 and 6050 up, then
    # the next coarse bucket's first one (6060); marks kept since 6000.
    first = bytes([0b11000100])             # bits 0, 1 and 5 (SETBIT's order: most significant first)
    line = UpTimeline(10, 60, 6000, [first, bytes([0b10000000]), None], since=6000.0)
    assert line.observed(6000, 6060) == 30.0
    assert line.observed(6005, 6015) == 10.0        # half of 6000's bucket, half of 6010's
    assert line.observed(6015, 6055) == 10.0        # 6015..6020 and 6050..6055
    assert line.observed(6000, 6065) == 35.0        # into the next coarse bucket's first one
    assert line.observed(6070, 6180) == 0.0         # down from 6070, no bitmap at all for 6120
    # Before the first mark the books kept none: that time counts, as it did before marks existed.
    late = UpTimeline(10, 60, 6000, [first, bytes([0b10000000]), None], since=6050.0)
    assert late.observed(5000, 6060) == 1050.0 + 10.0
    assert UpTimeline(10, 60, 6000, [None], since=None).observed(6000, 6050) == 50.0


def test_marks_cover_a_slow_event_loop_but_not_a_dead_process() -> None:
    marks = UpMarks(10, 3600)
    marks.beat(1005.0)
    marks.beat(1042.0)                      # 37 s without a beat: the process ran through them
    assert marks.take(1042.0) == [1000, 1010, 1020, 1030, 1040]
    marks.beat(1043.0)
    assert marks.take(1043.0) == []         # the bucket in progress is already marked
    marks.put_back([1040, 1050])
    assert marks.pending == 2
    # A new process (a restart) marks from its own start only.
    fresh = UpMarks(10, 3600)
    fresh.beat(5000.0)
    assert fresh.take(5000.0) == [5000]


def test_an_export_period_counts_the_marked_seconds() -> None:
    day = 86_400 * 20_000
    # Marks since the day's start: 6 h up out of a day, whatever the first observation says.
    assert observed_in_period(day, day + 86_400, day + 100_000, day, day, [21_600.0]) == 21_600.0
    # No marks kept (an older pool): from the first observation, as before.
    assert observed_in_period(day, day + 86_400, day + 100_000, day + 3600, None, []) == 82_800.0
    # Marks from noon on, the pool observed from 6 am: 6 h unmarked + the 2 h marked after noon.
    assert observed_in_period(day, day + 86_400, day + 100_000, day + 21_600, day + 43_200,
                              [7200.0]) == 21_600.0 + 7200.0
    # The day in progress: never more than the seconds since the marks began, or since the pool's
    # first start, 3 s into its first bucket (marked whole): 20 s old, not 30.
    assert observed_in_period(day, day + 86_400, day + 50, day, day, [60.0]) == 50.0
    assert observed_in_period(day, day + 86_400, day + 23, None, day, [30.0], started=day + 3) == 20.0


async def test_two_processes_mark_a_bucket_once(redis_url: str) -> None:
    keys = Keys("gs", 4)
    client = aioredis.Redis.from_url(redis_url)
    try:
        for _ in range(2):          # two processes (or a retried write) mark the same buckets
            await write_marks(client, keys, 10, 600, 3600, [1_800_000_000, 1_800_000_010, 1_800_000_590])
        await write_marks(client, keys, 10, 600, 3600, [1_800_000_600])
        since, started, per_day = await up_by_day(client, keys, [1_800_000_000 // 86_400])
        assert since == 1_800_000_000 and per_day == {1_800_000_000 // 86_400: 40.0} and started is None
        line = await read_timeline(client, keys, 10, 600, 1_800_000_000, 1_800_000_605)
        assert line.observed(1_800_000_000, 1_800_000_605) == 35.0
        ttl = await client.ttl(up_key(keys, 1_800_000_000))
        assert ttl == -2 or ttl > 0          # expired already (the test's time is in the future: kept)
    finally:
        await client.aclose()


def miner(now: float, start: float, end: float) -> list[ShareRecord]:
    """Difficulty 8 every 2 s from `start` to `end` before now (4 difficulty per second), in Texas."""
    return [ShareRecord(timestamp=now - start + 2 * k, account="tx", worker="tx.rig", difficulty=8.0,
                        share_difficulty=9.0, height=1, country="US", subdivision="Texas", authorized_at=now - start)
            for k in range(int((start - end) / 2))]


async def test_an_outage_inside_a_window_is_not_observed_time(redis_url: str, journal_dir: Path) -> None:
    """The pool ran from 60 to 40 minutes ago (its heartbeats) and from 10 minutes ago on, and was
    down for the 30 minutes between; a miner of 4 difficulty per second authorized 58 minutes ago
    and mined whenever the pool ran. The hour covers 30 minutes (it covered 60 before: half the
    figure), the worker's 28 since its authorize, and its figure holds the truth; the regions divide
    by the pool's seconds, a chart step inside the outage is empty and unobserved, and the export
    counts the same seconds."""
    ledger = make_ledger(journal_dir, redis_url)
    rollup = GeoRollup(GeoConfig())
    ledger.add_contributor(rollup)
    await ledger.start()
    try:
        now = time.time()
        client, keys = ledger.client, ledger.keys
        # The first run's heartbeats (as its process wrote them), its start, and the miner's shares.
        first_run = range(int((now - 3600) // 10) * 10, int((now - 2400) // 10) * 10, 10)
        await write_marks(client, keys, 10, 600, CONFIG.coarse_retention_s, list(first_run))
        await client.zadd(keys.first_seen(keys.pool), {"d": now - 3600}, lt=True)
        for record in miner(now, 3480, 2400) + miner(now, 600, 0):
            ledger.add(record)
        await flush_until_done(ledger)
        book = ledger.reader.hashrate
        hour = (await book.pool_windows(client, now=now)).h1
        # Up: the first run's buckets from the window's start (a bucket edge at or after now - 1 h)
        # and the second run's 10 minutes; the marks are whole buckets (one more at most where the
        # last share of the first run fell into the bucket its heartbeats had not reached).
        up = first_run.stop - book.window_start(3600, now) + now - (now - 600) // 10 * 10
        assert up - 0.001 <= hour.covered_seconds <= up + 10
        assert hour.covered_seconds < 1830                 # not 3600: the outage is not observed time
        assert hour.hashrate == pytest.approx(hour.shares * 8 * H / hour.covered_seconds)
        worker = (await book.windows(client, keys.shard("tx"), ["w:tx.rig"], now=now))["w:tx.rig"].h1
        assert 1670 <= worker.covered_seconds <= 1700 and not worker.first_share_excluded
        assert worker.low <= 4 * H <= worker.high and worker.hashrate == pytest.approx(4 * H, rel=0.02)
        live = await pool_regions(client, book, rollup.keys, 3600, now)
        assert live.covered_seconds == pytest.approx(hour.covered_seconds)
        assert sum(r.figure.hashrate for r in live.items) == pytest.approx(hour.hashrate, rel=1e-12)
        # The chart's 1 h history in 30 s steps: a step inside the outage saw nothing.
        history = await book.history(client, keys.pool, "d", 3600, now=now)
        gap = [p for p in history.points if now - 2300 <= p.t <= now - 800]
        assert gap and all(p.seconds == 0 and p.shares == 0 for p in gap)
        before = [p for p in history.points if now - 3500 <= p.t <= now - 2500]
        assert before and all(p.seconds == history.step_seconds for p in before)
        # The export of the days the hour falls in: the seconds marked up (not the 60 minutes).
        first_day = dt.datetime.fromtimestamp(now - 3600, dt.UTC).date()
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        raw = aioredis.Redis.from_url(redis_url)
        try:
            report = await build_report(raw, GeoConfig(), "daily", first_day, today, now=now)
        finally:
            await raw.aclose()
        seconds = sum(p.period_seconds for p in report.periods)
        assert first_run.stop - first_run.start + 600 - 10 <= seconds <= first_run.stop - first_run.start + 600 + 20
        work = sum(p.pool_difficulty for p in report.periods)
        # The miner mined 1,680 of the pool's 1,800 s up: 4 x 1680 / 1800 difficulty per second.
        assert work == hour.difficulty and work * H / seconds == pytest.approx(4 * H * 1680 / 1800, rel=0.02)
    finally:
        await ledger.stop()


async def test_the_heartbeat_marks_the_bucket_in_progress(redis_url: str, journal_dir: Path) -> None:
    """A pool with no miner is observed: its heartbeat marks every bucket it runs in."""
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()
    try:
        started = time.time()
        book = HashrateBook(ledger.keys, ledger.config)
        async with asyncio.timeout(10):
            while not (await read_timeline(ledger.client, ledger.keys, 10, 600, started - 20, started)).since:
                await asyncio.sleep(0.02)
        line = await book.timeline(ledger.client, started)
        bucket = int(started // 10) * 10
        assert line.since is not None and line.since <= bucket
        assert line.observed(bucket, started) == pytest.approx(started - bucket)
    finally:
        await ledger.stop()
