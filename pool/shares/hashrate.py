"""Hashrate estimates from the difficulty-sum buckets, with the window each one really covers.

hashrate = sum of accepted difficulty x 2^32 / seconds covered. The 1 m, 10 m and 1 h windows read
the fine buckets, 24 h the coarse ones; the window includes the bucket in progress, so the seconds
covered run from the start of the oldest bucket read to now, and are reported as such.
"""

from __future__ import annotations

import math
import time

import msgspec

from pool.config.ledger import LedgerConfig
from pool.shares.keys import Keys
from pool.shares.redis_conn import RedisClient

HASHES_PER_DIFFICULTY = 2**32
# Buckets hold integer sums of difficulty x ledger.bucket_units (HINCRBY, not HINCRBYFLOAT: they are
# the hottest keys).
WINDOWS: dict[str, int] = {"1m": 60, "10m": 600, "1h": 3600, "24h": 86400}


class HashrateEstimate(msgspec.Struct, frozen=True, kw_only=True):
    window: str                 # "1m", "10m", "1h", "24h"
    window_start: float         # unix seconds: start of the oldest bucket read
    window_end: float           # unix seconds: now
    seconds: float              # window_end - window_start
    difficulty: float           # accepted difficulty in the window
    hashrate: float             # hashes per second


class HistoryPoint(msgspec.Struct, frozen=True, kw_only=True):
    start: int
    seconds: int
    difficulty: float
    hashrate: float


def hashrate(difficulty: float, seconds: float) -> float:
    return difficulty * HASHES_PER_DIFFICULTY / seconds if seconds > 0 else 0.0


Z95 = 1.959964                      # two-sided 95 % normal quantile
DEFAULT_MIN_SHARES = 30             # below this many shares a figure is "warming up"


def poisson_bounds(count: int, z: float = Z95) -> tuple[float, float]:
    """Approximate 95 % bounds of a Poisson mean from `count` observed events.

    Wilson-Hilferty's cube-root approximation of the exact (chi-square) Garwood interval:
    lower = N (1 - 1/(9N) - z/(3 sqrt N))^3, upper = (N+1) (1 - 1/(9(N+1)) + z/(3 sqrt(N+1)))^3.
    Within 1 % of the exact interval from N = 1 up (N = 10 gives 4.79..18.39, exact 4.80..18.39); for
    N = 0 the lower bound is 0 and the upper 3.67 (exact 3.69).
    """
    if count < 0:
        raise ValueError("share count must be >= 0")
    upper_n = count + 1
    upper = upper_n * (1 - 1 / (9 * upper_n) + z / (3 * math.sqrt(upper_n))) ** 3
    if count == 0:
        return 0.0, upper
    lower = count * max(0.0, 1 - 1 / (9 * count) - z / (3 * math.sqrt(count))) ** 3
    return lower, upper


def covered_seconds(window_start: float, now: float, first_observed: float | None) -> float:
    """Seconds a window really saw: from the later of its start and the first observation (pool
    start, a worker's or region's first share) to now, so a young pool or a late worker is not
    divided by time nobody observed."""
    start = window_start if first_observed is None else max(window_start, first_observed)
    return max(0.0, now - start)


class HashrateFigure(msgspec.Struct, frozen=True, kw_only=True):
    """One hashrate figure as shown to a person: value, what it covers and how sure it is."""
    window: str                 # "1m", "5m", "1h", ...
    window_seconds: int         # the window's nominal length
    covered_seconds: float      # seconds actually observed (see covered_seconds)
    shares: int                 # accepted shares counted
    difficulty: float           # accepted difficulty counted
    hashrate: float             # H/s: difficulty x 2^32 / covered_seconds
    low: float                  # 95 % bounds, H/s, from the share count (Poisson)
    high: float | None          # None when no share and no difficulty to scale by
    warming_up: bool            # fewer than the configured minimum of shares
    basis: str                  # the method, in words (for exports' metadata)


def hashrate_figure(window: str, window_seconds: int, window_start: float, now: float,
                    difficulty: float, shares: int, first_observed: float | None = None,
                    min_shares: int = DEFAULT_MIN_SHARES) -> HashrateFigure:
    """The figure for `shares` accepted shares of total `difficulty` in the window.

    Share arrivals are Poisson, so the relative bounds of the count carry over to the work: the
    bounds scale the estimate by lower(N)/N and upper(N)/N (mean difficulty per share held fixed).
    """
    seconds = covered_seconds(window_start, now, first_observed)
    value = hashrate(difficulty, seconds)
    low_n, high_n = poisson_bounds(shares)
    if shares > 0:
        low, high = value * low_n / shares, value * high_n / shares
    else:
        low, high = 0.0, None
    basis = (f"accepted difficulty x 2^32 over {seconds:.0f} s observed of a {window_seconds} s window; "
             f"95 % interval from {shares} shares (Poisson, Wilson-Hilferty)")
    return HashrateFigure(window=window, window_seconds=window_seconds, covered_seconds=seconds,
                          shares=shares, difficulty=difficulty, hashrate=value, low=low, high=high,
                          warming_up=shares < min_shares, basis=basis)


def bucket_starts(now: float, window_s: int, resolution: int) -> list[int]:
    """Bucket starts covering [now - window_s, now], oldest first."""
    last = int(now // resolution) * resolution
    first = int((now - window_s) // resolution) * resolution
    return list(range(first, last + 1, resolution))


class HashrateReader:
    """Reads worker / account / pool hashrate from Redis (for the admin API and metrics)."""

    def __init__(self, client: RedisClient, keys: Keys, config: LedgerConfig) -> None:
        self.client = client
        self.keys = keys
        self.config = config

    def _plan(self, window: str, now: float) -> tuple[int, list[int]]:
        seconds = WINDOWS[window]
        resolution = self.config.coarse_bucket_s if seconds > 3600 else self.config.fine_bucket_s
        return resolution, bucket_starts(now, seconds, resolution)

    async def _sum(self, tag: str, field: str, window: str, now: float) -> HashrateEstimate:
        resolution, starts = self._plan(window, now)
        async with self.client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hget(self.keys.bucket(tag, resolution, start), field)
            values = await pipe.execute()
        total = sum(int(v) for v in values if v is not None) / self.config.bucket_units
        seconds = now - starts[0]
        return HashrateEstimate(window=window, window_start=float(starts[0]), window_end=now,
                                seconds=seconds, difficulty=total, hashrate=hashrate(total, seconds))

    async def worker(self, account: str, worker: str, now: float | None = None) -> list[HashrateEstimate]:
        now = time.time() if now is None else now
        tag = self.keys.shard(account)
        return [await self._sum(tag, "w:" + worker, w, now) for w in WINDOWS]

    async def account(self, account: str, now: float | None = None) -> list[HashrateEstimate]:
        now = time.time() if now is None else now
        tag = self.keys.shard(account)
        return [await self._sum(tag, "a:" + account, w, now) for w in WINDOWS]

    async def pool(self, now: float | None = None) -> list[HashrateEstimate]:
        now = time.time() if now is None else now
        return [await self._sum(self.keys.pool, "d", w, now) for w in WINDOWS]

    async def history(self, account: str | None = None, worker: str | None = None,
                      hours: int = 24, now: float | None = None) -> list[HistoryPoint]:
        """Coarse-bucket history (the admin's hashrate chart): pool, one account or one worker."""
        now = time.time() if now is None else now
        resolution = self.config.coarse_bucket_s
        starts = bucket_starts(now, hours * 3600, resolution)
        if worker is not None:
            if account is None:
                raise ValueError("history for a worker needs its account")
            tag, field = self.keys.shard(account), "w:" + worker
        elif account is not None:
            tag, field = self.keys.shard(account), "a:" + account
        else:
            tag, field = self.keys.pool, "d"
        async with self.client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hget(self.keys.bucket(tag, resolution, start), field)
            values = await pipe.execute()
        points = []
        for start, value in zip(starts, values, strict=True):
            diff = int(value) / self.config.bucket_units if value is not None else 0.0
            seconds = int(min(resolution, max(now - start, 1)))
            points.append(HistoryPoint(start=start, seconds=seconds, difficulty=diff,
                                       hashrate=hashrate(diff, seconds)))
        return points
