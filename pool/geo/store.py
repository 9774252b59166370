"""The one reader of the geo rollups: day rollups for an export, live region windows for the
dashboard, the API and /metrics, and the durable first observation of each region.

Exports read day buckets only (minute and hour buckets are for live windows). Distinct miners over a
week or a month need the union of daily HyperLogLogs that live in different cluster slots, so their
raw bytes are copied into one scratch slot and counted there with a multi-key PFCOUNT.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from pool.geo import keys as K
from pool.geo.keys import GeoKeys
from pool.geo.privacy import Cell
from pool.geo.subdivisions import canonical, canonical_name
from pool.shares.hashrate import (
    DEFAULT_MIN_SHARES,
    FINE_WINDOW_LIMIT,
    HashrateBook,
    HashrateFigure,
    covered_seconds,
    observed_figure,
    window_first,
)


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class DayData:
    day: dt.date
    regions: dict[str, Cell] = field(default_factory=dict)            # "CC|sub" -> cell
    firmware: dict[str, Cell] = field(default_factory=dict)           # "fw|CC" -> cell
    firmware_by_region: dict[str, float] = field(default_factory=dict)  # "fw|CC|sub" -> difficulty
    databases: dict[str, float] = field(default_factory=dict)         # ident -> difficulty
    network: list[float] = field(default_factory=list)                # difficulty samples


class HllUnions:
    """Upload HyperLogLog blobs once, then count unions of them (all in one scratch slot)."""

    def __init__(self, redis, keys: GeoKeys, ttl: int = 900) -> None:
        self._redis = redis
        self._base = keys.scratch(secrets.token_hex(8))
        self._ttl = ttl
        self._pending: list[tuple[int, bytes]] = []
        self._count = 0

    def add(self, blob: bytes) -> int:
        handle = self._count
        self._count += 1
        self._pending.append((handle, blob))
        return handle

    async def _flush(self) -> None:
        if not self._pending:
            return
        pipe = self._redis.pipeline(transaction=False)
        for handle, blob in self._pending:
            pipe.set(f"{self._base}:{handle}", blob, ex=self._ttl)
        self._pending = []
        await pipe.execute()

    async def count(self, unions: list[list[int]]) -> list[int]:
        await self._flush()
        pipe = self._redis.pipeline(transaction=False)
        asked = []
        for handles in unions:
            if handles:
                # execute_command: redis-py refuses pfcount() in a cluster pipeline (one slot here).
                pipe.execute_command("PFCOUNT", *(f"{self._base}:{h}" for h in dict.fromkeys(handles)))
                asked.append(True)
            else:
                asked.append(False)
        results = iter(await pipe.execute()) if any(asked) else iter(())
        return [int(next(results)) if a else 0 for a in asked]

    async def close(self) -> None:
        self._pending = []
        if self._count:
            names = [f"{self._base}:{h}" for h in range(self._count)]
            for start in range(0, len(names), 1000):
                await self._redis.delete(*names[start:start + 1000])


def _check_client(redis) -> None:
    pool = getattr(redis, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", {}) if pool is not None else {}
    if kwargs.get("decode_responses"):
        raise ValueError("geo exports need a Redis client with decode_responses=False "
                         "(HyperLogLogs are binary)")


async def read_days(redis, keys: GeoKeys, days: Sequence[dt.date], unions: HllUnions, depth: int,
                    progress: Callable[[int], None] | None = None, chunk: int = 7,
                    firmware: bool = True) -> list[DayData]:
    """Read the day rollups of `days` (pipelined a few days at a time); the firmware cells' miner
    data only when `firmware`."""
    _check_client(redis)
    out: list[DayData] = []
    for start in range(0, len(days), chunk):
        part = days[start:start + chunk]
        pipe = redis.pipeline(transaction=False)
        for day in part:
            pipe.hgetall(keys.day(day))
            pipe.hgetall(keys.databases(day))
            pipe.hgetall(keys.network(day))
        replies = await pipe.execute()
        datas = []
        for i, day in enumerate(part):
            stats, dbs, net = replies[3 * i: 3 * i + 3]
            datas.append(_parse_day(day, stats, dbs, net))
            if not firmware:
                datas[-1].firmware = {}
        await _read_miners(redis, keys, datas, unions, depth)
        out.extend(datas)
        if progress is not None:
            progress(len(part))
    return out


def _parse_day(day: dt.date, stats: dict, dbs: dict, net: dict) -> DayData:
    data = DayData(day)
    fw_country: dict[str, Cell] = {}
    for raw_field, raw_value in stats.items():
        metric, _, rest = _s(raw_field).partition(K.SEP)
        value = float(raw_value)
        if metric in (K.FW_DIFF, K.FW_COUNT):
            family, _, region = rest.partition(K.SEP)
            country, _ = K.split_region(region)
            name = f"{family}{K.SEP}{country}"
            cell = fw_country.get(name) or fw_country.setdefault(name, Cell(country, family))
            if metric == K.FW_DIFF:
                cell.difficulty += value
                data.firmware_by_region[rest] = data.firmware_by_region.get(rest, 0.0) + value
            else:
                cell.shares += int(value)
            continue
        country, subdivision = K.split_region(rest)
        cell = data.regions.get(rest) or data.regions.setdefault(rest, Cell(country, subdivision))
        if metric == K.DIFF:
            cell.difficulty += value
        elif metric == K.COUNT:
            cell.shares += int(value)
        elif metric == K.HOSTING:
            cell.hosting += value
        elif metric == K.PROXY:
            cell.proxy += value
    data.firmware = fw_country
    data.databases = {_s(k): float(v) for k, v in dbs.items()}
    data.network = [float(v) for v in net.values()]
    return data


async def _read_miners(redis, keys: GeoKeys, datas: list[DayData], unions: HllUnions, depth: int) -> None:
    pipe = redis.pipeline(transaction=False)
    targets: list[Cell] = []
    for data in datas:
        for name, cell in data.regions.items():
            pipe.get(keys.miners_day(data.day, name))
            pipe.zrevrange(keys.top_day(data.day, name), 0, depth, withscores=True)
            targets.append(cell)
        for name, cell in data.firmware.items():
            family, _, country = name.partition(K.SEP)
            pipe.get(keys.fw_miners_day(data.day, family, country))
            pipe.zrevrange(keys.fw_top_day(data.day, family, country), 0, depth, withscores=True)
            targets.append(cell)
    if not targets:
        return
    replies = await pipe.execute()
    for i, cell in enumerate(targets):
        blob, top = replies[2 * i], replies[2 * i + 1]
        if blob is not None:
            cell.hlls = [unions.add(blob)]
        # One more than `depth` was read: if it exists, every miner not in the first `depth` is
        # bounded by it (it also bounds the ones trimmed away, which were smaller when trimmed).
        pairs = [(_s(m), float(v)) for m, v in top]
        if len(pairs) > depth:
            cell.floor = pairs[depth][1]
            pairs = pairs[:depth]
        cell.top = dict(pairs)
        if blob is None or not pairs:
            # Expired miner data: the cell cannot be checked, so it must not pass the rule.
            cell.hlls = []
            cell.floor = max(cell.floor, cell.difficulty)


def merge_days(datas: Sequence[DayData]) -> tuple[dict[str, list[Cell]], dict[str, list[Cell]]]:
    """Period cells grouped by country: (regions, firmware)."""
    regions: dict[str, Cell] = {}
    firmware: dict[str, Cell] = {}
    for data in datas:
        for target, source in ((regions, data.regions), (firmware, data.firmware)):
            for name, cell in source.items():
                item = cell.item
                if source is data.regions:
                    # One spelling per subdivision: two releases' names for it merge into one cell.
                    item = canonical_name(cell.group, cell.item)
                    name = K.region_id(cell.group, item)
                if name in target:
                    target[name].absorb(cell)
                else:
                    target[name] = Cell(cell.group, item, members=0)
                    target[name].absorb(cell)
    for cell in (*regions.values(), *firmware.values()):
        cell.members = 1  # one base cell, however many days it spans
    by_country: dict[str, list[Cell]] = defaultdict(list)
    fw_by_country: dict[str, list[Cell]] = defaultdict(list)
    for cell in regions.values():
        by_country[cell.group].append(cell)
    for cell in firmware.values():
        fw_by_country[cell.group].append(cell)
    return dict(by_country), dict(fw_by_country)


async def days_with_data(redis, keys: GeoKeys, days: Sequence[dt.date]) -> list[dt.date]:
    """Which of `days` have a day rollup (one pipelined EXISTS per day)."""
    if not days:
        return []
    pipe = redis.pipeline(transaction=False)
    for day in days:
        pipe.exists(keys.day(day))
    replies = await pipe.execute()
    return [day for day, found in zip(days, replies, strict=True) if found]

# ---------------------------------------------------------------------------------------------
# Live windows (dashboard, API, /metrics): the pool window's edges, fine/minute/hour rollups
# ---------------------------------------------------------------------------------------------

class LiveRegion(msgspec.Struct, kw_only=True):
    country: str
    subdivision: str                # the published spelling (pool.geo.subdivisions.canonical), "" for none
    subdivision_code: str | None    # ISO 3166-2 when known, as in the exports and on the map
    figure: HashrateFigure          # divided by the pool's observed seconds of the window (see read_live_regions)
    miners: int                     # distinct miners: the largest hourly count of the window's hours


class LiveRegions(msgspec.Struct, kw_only=True):
    window_seconds: int
    start: float                    # start of the data read (a multiple of the rollup step)
    covered_seconds: float          # the pool's observed seconds of the window: every region's divisor
    items: list[LiveRegion]         # largest difficulty first
    # Distinct miners per whole country: the union of its subdivisions' HyperLogLogs of one hour (same
    # day, same slot), so a miner in two subdivisions counts once.
    country_miners: dict[str, int]


async def first_observations(redis, keys: GeoKeys, regions: Sequence[str]) -> list[float | None]:
    """Durable first shares of regions ("CC|sub", or K.ANY_REGION for the pool), None if unrecorded."""
    if not regions:
        return []
    scores = await redis.zmscore(keys.first_seen, list(regions))
    return [None if s is None else float(s) for s in scores]


def region_reads(start: int, now: float, steps: Sequence[int]) -> list[tuple[int, int]]:
    """(step, bucket start) of the rollup buckets that hold exactly the shares of [start, now]: the
    finest step up to the next edge of the coarser one, and so on, the coarsest for the rest (the
    bucket in progress included). `start` is a multiple of steps[0]; each step divides the next."""
    reads: list[tuple[int, int]] = []
    t = start
    for i, step in enumerate(steps):
        edge = math.inf if i + 1 == len(steps) else -(-t // steps[i + 1]) * steps[i + 1]
        while t < edge and t <= now:
            reads.append((step, t))
            t += step
    return reads


def region_steps(window: int, fine_s: int | None) -> tuple[int, ...]:
    """The rollup steps a region window reads: the ledger's fine buckets at the edges of a window it
    reads in fine buckets too (up to an hour), minutes, hours."""
    if fine_s is not None and window <= FINE_WINDOW_LIMIT:
        return (fine_s, 60, 3600)
    return (60, 3600)


def _rollup_key(keys: GeoKeys, step: int, start: int) -> str:
    when = dt.datetime.fromtimestamp(start, dt.UTC)
    if step == 3600:
        return keys.hour(when.date(), f"{when:%H}")
    if step == 60:
        return keys.minute(when.date(), f"{when:%H%M}")
    return keys.fine(when.date(), step, f"{when:%H%M%S}")


async def read_live_regions(redis, keys: GeoKeys, window: int, now: float | None = None,
                            min_shares: int = DEFAULT_MIN_SHARES, start: float | None = None,
                            observed_from: float | None = None, covered: float | None = None,
                            fine_s: int | None = None) -> LiveRegions:
    """Accepted difficulty, share count and distinct miners per (country, subdivision) over the
    window. Every region is divided by the POOL's observed seconds of the window: the pool observes
    all regions at once (a region without shares had no hashrate; it was not unobserved), so the
    regions sum exactly to the pool's figure. The data starts at `start` (the pool window's start,
    HashrateBook.window_start; else the first minute at or after now - window) and is read from the
    coarsest rollup buckets that fit (region_reads: `fine_s` buckets, the ledger's, at the edges of
    a window up to an hour, then minutes, then hours), so regions and pool count the same shares.
    The divisor: `covered`, the pool window's observed seconds with outages left out
    (HashrateBook.pool_coverage); else from the later of the start and `observed_from` (else the
    geo rollup's first share of the pool) to now. Distinct miners: the largest hourly count of the
    hours in the window (a lower bound of the union; hourly HyperLogLogs of different days live in
    different cluster slots)."""
    now = time.time() if now is None else now
    steps = region_steps(window, fine_s)
    first = window_first(now if start is None else start, window if start is None else 0, steps[0])
    reads = region_reads(first, now, steps)
    async with redis.pipeline(transaction=False) as pipe:
        for step, bucket in reads:
            pipe.hgetall(_rollup_key(keys, step, bucket))
        replies = await pipe.execute()
    # Canonical region -> [difficulty, shares]; two spellings of one subdivision (an older database
    # release's, say) are one region, read from both spellings' fields.
    sums: dict[tuple[str, str, str | None], list[float]] = {}
    spellings: dict[tuple[str, str, str | None], set[str]] = defaultdict(set)
    named: dict[str, tuple[str, str, str | None]] = {}
    oldest: tuple[int, int] | None = None             # (start, step) of the first bucket with data
    for (step, bucket), fields in zip(reads, replies, strict=True):
        for raw_field, raw_value in fields.items():
            metric, _, region = _s(raw_field).partition(K.SEP)
            if metric not in (K.DIFF, K.COUNT):
                continue
            oldest = (bucket, step) if oldest is None else oldest
            name = named.get(region)
            if name is None:
                country, subdivision = K.split_region(region)
                name = named[region] = (country, *canonical(country, subdivision))
                spellings[name].add(region)
            cell = sums.get(name)
            if cell is None:
                cell = sums[name] = [0.0, 0]
            cell[0 if metric == K.DIFF else 1] += float(raw_value)
    if covered is None:
        if observed_from is None:
            observed_from = (await first_observations(redis, keys, [K.ANY_REGION]))[0]
        # Data from a whole bucket before the recorded first observation (written before it was
        # kept) counts from its bucket.
        if oldest is not None and (observed_from is None or oldest[0] + oldest[1] <= observed_from):
            observed_from = oldest[0]
        covered = covered_seconds(first, now, observed_from)
    regions = sorted(sums, key=lambda r: (-sums[r][0], r[0], r[1]))
    items = []
    for name in regions:
        difficulty, shares = sums[name]
        country, subdivision, code = name
        items.append(LiveRegion(country=country, subdivision=subdivision, subdivision_code=code, miners=0,
                                figure=observed_figure(window, covered, difficulty, int(shares), min_shares)))
    hours = sorted({(when.date(), f"{when:%H}") for when in
                    (dt.datetime.fromtimestamp(bucket, dt.UTC) for _, bucket in reads)})
    country_miners = await _live_miners(redis, keys, items, [sorted(spellings[name]) for name in regions], hours)
    return LiveRegions(window_seconds=window, start=float(first), covered_seconds=covered, items=items,
                       country_miners=country_miners)


async def pool_regions(redis, book: HashrateBook, keys: GeoKeys, window: int, now: float | None = None,
                       min_shares: int = DEFAULT_MIN_SHARES) -> LiveRegions:
    """Region windows over the pool window's span and divisor (HashrateBook.pool_coverage: from
    the pool's first observation, outages left out): what every view (API, /metrics, dashboard,
    map) reads, so regions sum to the pool."""
    now = time.time() if now is None else now
    start, covered = await book.pool_coverage(redis, window, now)
    return await read_live_regions(redis, keys, window, now, min_shares, start=start, covered=covered,
                                   fine_s=book.config.fine_bucket_s)


async def _live_miners(redis, keys: GeoKeys, items: list[LiveRegion], spellings: list[list[str]],
                       hours: list[tuple[dt.date, str]]) -> dict[str, int]:
    """Distinct miners per item (the union of its spellings' HyperLogLogs, per hour) and per country."""
    if not items or not hours:
        return {}
    regions_of: dict[str, list[str]] = defaultdict(list)
    for item, raw in zip(items, spellings, strict=True):
        regions_of[item.country].extend(raw)
    async with redis.pipeline(transaction=False) as pipe:
        for raw in spellings:
            for day, hour in hours:
                pipe.execute_command("PFCOUNT", *(keys.miners_hour(day, hour, region) for region in raw))
        for regions in regions_of.values():
            for day, hour in hours:
                pipe.execute_command("PFCOUNT", *(keys.miners_hour(day, hour, region) for region in regions))
        counts = await pipe.execute()
    per = len(hours)
    for n, item in enumerate(items):
        item.miners = max(int(c) for c in counts[n * per:(n + 1) * per])
    offset = len(items) * per
    return {country: max(int(c) for c in counts[offset + n * per:offset + (n + 1) * per])
            for n, country in enumerate(regions_of)}
