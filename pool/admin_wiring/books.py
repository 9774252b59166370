"""Reads of the ledger's and the geo rollups' Redis data for the admin views.

Hashrate = accepted difficulty x 2^32 / seconds covered, from the ledger's difficulty buckets (fine
buckets up to an hour, coarse ones beyond). A window covers from the later of the start of its
oldest bucket and the start of the bucket of the field's first share (pool.shares.hashrate's
covered_seconds) to now: a pool or worker 40 s old is divided by 40 s, not by the window.
Regions come from the geo minute (or hour) rollups.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import defaultdict
from collections.abc import Sequence

from pool.admin.interfaces import HashrateHistory, HashratePoint, HashrateWindows
from pool.config.ledger import LedgerConfig
from pool.geo import keys as geo_keys
from pool.geo.keys import GeoKeys
from pool.shares.blocks import BlockInfo as LedgerBlock
from pool.shares.blocks import block_info
from pool.shares.hashrate import HASHES_PER_DIFFICULTY, bucket_starts, covered_seconds
from pool.shares.keys import Keys
from pool.shares.redis_conn import RedisClient, text

# Standard windows of HashrateWindows: field name -> seconds.
WINDOWS: dict[str, int] = {"m1": 60, "m5": 300, "m15": 900, "h1": 3600, "h6": 21_600, "h24": 86_400}
FINE_WINDOW_LIMIT = 3600            # windows up to this read fine buckets, longer ones coarse buckets
HISTORY_POINTS = 120                # a history has at most about this many points
REGION_MINUTE_LIMIT = 6 * 3600      # region windows up to this read minute rollups, longer ones hours


def first_observed(fine_nonempty: list[int], coarse_nonempty: list[int], fine_from: int) -> float | None:
    """Start of the bucket holding a field's first share in the buckets read, at the finest
    resolution that saw it: the fine buckets when all its data lies within them (it began mining
    under an hour ago), else the coarse ones. None when nothing was read."""
    if coarse_nonempty and coarse_nonempty[0] < fine_from:
        return float(coarse_nonempty[0])
    if fine_nonempty:
        return float(fine_nonempty[0])
    return float(coarse_nonempty[0]) if coarse_nonempty else None


def rate(difficulty: float, seconds: float) -> float:
    return difficulty * HASHES_PER_DIFFICULTY / seconds if seconds > 0 else 0.0


class HashrateBook:
    """Hashrate windows and histories of the pool, accounts and workers."""

    def __init__(self, keys: Keys, config: LedgerConfig) -> None:
        self.keys = keys
        self.config = config

    def _plan(self, now: float) -> dict[str, tuple[int, list[int]]]:
        plan = {}
        for name, seconds in WINDOWS.items():
            resolution = self.config.fine_bucket_s if seconds <= FINE_WINDOW_LIMIT else self.config.coarse_bucket_s
            plan[name] = (resolution, bucket_starts(now, seconds, resolution))
        return plan

    async def windows(self, client: RedisClient, tag: str, fields: Sequence[str],
                      now: float | None = None) -> dict[str, HashrateWindows]:
        """Windows for several fields of one hash tag (the pool's, or one shard's) in one pipeline."""
        now = time.time() if now is None else now
        fields = list(dict.fromkeys(fields))
        if not fields:
            return {}
        plan = self._plan(now)
        # Each bucket is read once even though the windows overlap.
        buckets = sorted({(res, start) for res, starts in plan.values() for start in starts})
        async with client.pipeline(transaction=False) as pipe:
            for res, start in buckets:
                pipe.hmget(self.keys.bucket(tag, res, start), fields)
            replies = await pipe.execute()
        sums = {bucket: values for bucket, values in zip(buckets, replies, strict=True)}
        fine_starts, coarse_starts = plan["h1"][1], plan["h24"][1]
        fine, coarse = self.config.fine_bucket_s, self.config.coarse_bucket_s
        out = {}
        for i, field in enumerate(fields):
            first = first_observed(
                [s for s in fine_starts if sums[(fine, s)][i]],
                [s for s in coarse_starts if sums[(coarse, s)][i]], fine_starts[0])
            values = {}
            for name, (res, starts) in plan.items():
                total = sum(int(sums[(res, s)][i] or 0) for s in starts) / self.config.bucket_units
                values[name] = rate(total, covered_seconds(starts[0], now, first))
            out[field] = HashrateWindows(**values)
        return out

    async def pool_windows(self, client: RedisClient, now: float | None = None) -> HashrateWindows:
        return (await self.windows(client, self.keys.pool, ["d"], now))["d"]

    async def pool_counts(self, client: RedisClient, seconds: int, now: float | None = None) -> tuple[int, float]:
        """(accepted shares, accepted difficulty) of the whole pool over the last `seconds`."""
        now = time.time() if now is None else now
        res = self.config.fine_bucket_s if seconds <= FINE_WINDOW_LIMIT else self.config.coarse_bucket_s
        starts = bucket_starts(now, seconds, res)
        async with client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hmget(self.keys.bucket(self.keys.pool, res, start), ["n", "d"])
            replies = await pipe.execute()
        count = sum(int(float(n or 0)) for n, _ in replies)
        return count, sum(int(d or 0) for _, d in replies) / self.config.bucket_units

    def history_plan(self, window: int) -> tuple[int, int]:
        """(bucket resolution, step) for a history window."""
        fine, coarse = self.config.fine_bucket_s, self.config.coarse_bucket_s
        resolution = fine if window <= self.config.fine_retention_s - fine else coarse
        step = resolution * max(1, math.ceil(window / resolution / HISTORY_POINTS))
        return resolution, step

    async def history(self, client: RedisClient, tag: str, field: str, window: int,
                      now: float | None = None) -> HashrateHistory:
        now = time.time() if now is None else now
        resolution, step = self.history_plan(window)
        starts = bucket_starts(now, window, resolution)
        async with client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hget(self.keys.bucket(tag, resolution, start), field)
            replies = await pipe.execute()
        per_step: dict[int, float] = {}
        first = int((now - window) // step * step)
        for t in range(first, int(now) + 1, step):
            per_step[t] = 0.0
        for start, value in zip(starts, replies, strict=True):
            if value is not None:
                key = start // step * step
                per_step[key] = per_step.get(key, 0.0) + int(value) / self.config.bucket_units
        points = [HashratePoint(t=float(t), hashrate=rate(d, min(step, max(now - t, 1.0))))
                  for t, d in sorted(per_step.items())]
        return HashrateHistory(window_seconds=window, step_seconds=step, points=points)


async def read_blocks(client: RedisClient, keys: Keys, limit: int) -> list[tuple[LedgerBlock, float | None]]:
    """The ledger's blocks, newest found first, each with the difficulty of the round it closed."""
    hashes = [text(h) for h in await client.zrevrange(keys.blocks, 0, max(0, limit - 1))]
    if not hashes:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for block_hash in hashes:
            pipe.hgetall(keys.block(block_hash))
            pipe.hget(keys.round_closed(block_hash), "_d")
        replies = await pipe.execute()
    out = []
    for i in range(len(hashes)):
        raw, round_difficulty = replies[2 * i], replies[2 * i + 1]
        if raw:
            info = block_info({text(k): text(v) for k, v in raw.items()})
            out.append((info, float(round_difficulty) if round_difficulty is not None else None))
    return out


class RegionCell:
    __slots__ = ("difficulty", "miners")

    def __init__(self) -> None:
        self.difficulty = 0.0
        self.miners = 0


async def read_regions(client: RedisClient, keys: GeoKeys, window: int, now: float | None = None,
                       ) -> tuple[dict[tuple[str, str], RegionCell], float, dict[str, int]]:
    """Accepted difficulty and distinct miners per (country, subdivision) over the window, the seconds
    covered, and distinct miners per whole country. Distinct miners: the largest hourly count of the
    hours in the window (a lower bound of the union; hourly HyperLogLogs of different days live in
    different cluster slots). A country's count is the union of its subdivisions' HyperLogLogs of one
    hour (same day, same slot), so a miner in two subdivisions counts once."""
    now = time.time() if now is None else now
    step = 60 if window <= REGION_MINUTE_LIMIT else 3600
    first = int((now - window) // step * step)
    stamps = [dt.datetime.fromtimestamp(t, dt.UTC) for t in range(first, int(now) + 1, step)]
    async with client.pipeline(transaction=False) as pipe:
        for when in stamps:
            day = when.date()
            if step == 60:
                pipe.hgetall(keys.minute(day, f"{when:%H%M}"))
            else:
                pipe.hgetall(keys.hour(day, f"{when:%H}"))
        replies = await pipe.execute()
    cells: dict[tuple[str, str], RegionCell] = defaultdict(RegionCell)
    for fields in replies:
        for raw_field, raw_value in fields.items():
            metric, _, region = text(raw_field).partition(geo_keys.SEP)
            if metric == geo_keys.DIFF:
                cells[geo_keys.split_region(region)].difficulty += float(raw_value)
    hours = sorted({(when.date(), f"{when:%H}") for when in stamps})
    country_miners: dict[str, int] = {}
    if cells and hours:
        regions_of: dict[str, list[str]] = defaultdict(list)
        for country, subdivision in cells:
            regions_of[country].append(geo_keys.region_id(country, subdivision))
        # PFCOUNT through execute_command: redis-py refuses pfcount() in a cluster pipeline (it could
        # name keys of several slots; an hour's keys share one).
        async with client.pipeline(transaction=False) as pipe:
            for country, subdivision in cells:
                region = geo_keys.region_id(country, subdivision)
                for day, hour in hours:
                    pipe.execute_command("PFCOUNT", keys.miners_hour(day, hour, region))
            for regions in regions_of.values():
                for day, hour in hours:
                    pipe.execute_command("PFCOUNT", *(keys.miners_hour(day, hour, region) for region in regions))
            counts = await pipe.execute()
        per_region = len(hours)
        for n, cell in enumerate(cells.values()):
            cell.miners = max(int(c) for c in counts[n * per_region:(n + 1) * per_region])
        offset = len(cells) * per_region
        for n, country in enumerate(regions_of):
            start = offset + n * per_region
            country_miners[country] = max(int(c) for c in counts[start:start + per_region])
    return dict(cells), max(1.0, now - first), country_miners
