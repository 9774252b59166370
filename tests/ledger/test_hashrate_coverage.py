"""Hashrate windows divide by the time observed: a young pool and a late worker (real redis-server)."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis

from pool.config.ledger import LedgerConfig
from pool.shares.hashrate import HashrateBook, window_buckets
from pool.shares.keys import Keys

NOW = 1_800_000_000.0        # a multiple of 600: fine and coarse buckets start at NOW
H = 2**32


def put(url: str, keys: Keys, config: LedgerConfig, tag: str, field: str, first: int, last: int,
        difficulty_per_s: float) -> None:
    """Write fine and coarse buckets as the ledger would for constant work from `first` to `last`."""
    client = redis.Redis.from_url(url)
    for res in (config.fine_bucket_s, config.coarse_bucket_s):
        for t in range(first, last):
            start = t // res * res
            client.hincrby(keys.bucket(tag, res, start), field, int(difficulty_per_s * config.bucket_units))
    client.close()


@pytest.mark.asyncio
async def test_young_pool_and_staggered_workers_read_their_true_rate(redis_url: str) -> None:
    config, keys = LedgerConfig(), Keys("gs", 4)
    book = HashrateBook(keys, config)
    tag = keys.shard("acct")
    now = int(NOW) + 40
    # Worker a mined 10 difficulty/s for the last 40 s, worker b 10/s for the last 20 s only.
    put(redis_url, keys, config, tag, "w:a", now - 40, now, 10.0)
    put(redis_url, keys, config, tag, "w:b", now - 20, now, 10.0)
    put(redis_url, keys, config, keys.pool, "d", now - 40, now, 10.0)
    put(redis_url, keys, config, keys.pool, "d", now - 20, now, 10.0)
    client = aioredis.Redis.from_url(redis_url)
    try:
        windows = await book.windows(client, tag, ["w:a", "w:b"], now=float(now))
        pool = await book.pool_windows(client, now=float(now))
    finally:
        await client.aclose()
    for name in ("m1", "m5", "m15", "h1", "h6", "h24"):
        # Truth: 10 x 2^32 H/s each (b's first share's bucket starts exactly when it started).
        assert getattr(windows["w:a"], name).hashrate == pytest.approx(10 * H), name
        assert getattr(windows["w:b"], name).hashrate == pytest.approx(10 * H), name
        # The pool: 600 difficulty over its 40 s = 15 x 2^32 H/s, not divided by the window.
        assert getattr(pool, name).hashrate == pytest.approx(15 * H), name


@pytest.mark.asyncio
async def test_a_worker_that_left_decays_to_zero(redis_url: str) -> None:
    config, keys = LedgerConfig(), Keys("gs", 4)
    tag = keys.shard("acct")
    now = int(NOW) + 3 * 3600
    put(redis_url, keys, config, tag, "w:gone", now - 2 * 3600, now - 3600 - 120, 10.0)
    client = aioredis.Redis.from_url(redis_url)
    try:
        w = (await HashrateBook(keys, config).windows(client, tag, ["w:gone"], now=float(now)))["w:gone"]
    finally:
        await client.aclose()
    assert w.m1.hashrate == w.m5.hashrate == w.m15.hashrate == w.h1.hashrate == 0.0
    # 6 h window: 3480 s x 10 difficulty seen since its first (coarse) bucket, 2 h ago.
    assert w.h6.hashrate == pytest.approx(3480 * 10 * H / (2 * 3600))


@pytest.mark.asyncio
async def test_an_hour_read_as_whole_coarse_buckets_and_fine_edges_sums_the_same(redis_url: str) -> None:
    """Windows up to an hour read whole 10-minute buckets plus the 10 s ones at their edges: at a time
    that is no bucket boundary, each window's difficulty is exactly that of its 10 s buckets."""
    config, keys = LedgerConfig(), Keys("gs", 4)
    tag = keys.shard("acct")
    now = NOW + 1234.5
    first, last = int(now) - 3 * 3600, int(now) + 1
    put(redis_url, keys, config, tag, "w:x", first, last, 10.0)
    client = aioredis.Redis.from_url(redis_url)
    try:
        windows = (await HashrateBook(keys, config).windows(client, tag, ["w:x"], now=now))["w:x"]
    finally:
        await client.aclose()
    for name, seconds in (("m1", 60), ("m5", 300), ("m15", 900), ("h1", 3600)):
        # The window's own buckets: from the first common edge at or after now - window (never longer).
        starts = set(window_buckets(now, seconds, config.fine_bucket_s))
        assert getattr(windows, name).covered_seconds <= seconds
        truth = 10.0 * sum(1 for t in range(first, last) if t // config.fine_bucket_s * config.fine_bucket_s in starts)
        assert getattr(windows, name).difficulty == pytest.approx(truth), name
    coarse = set(window_buckets(now, 86_400, config.coarse_bucket_s))
    truth = 10.0 * sum(1 for t in range(first, last) if t // config.coarse_bucket_s * config.coarse_bucket_s in coarse)
    assert windows.h24.difficulty == pytest.approx(truth)
