"""Reading the day rollups back from Redis for an export, and counting HyperLogLog unions.

Exports read day buckets only (minute and hour buckets are for dashboards). Distinct miners over a
week or a month need the union of daily HyperLogLogs that live in different cluster slots, so their
raw bytes are copied into one scratch slot and counted there with a multi-key PFCOUNT.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pool.geo import keys as K
from pool.geo.keys import GeoKeys
from pool.geo.privacy import Cell
from pool.geo.subdivisions import canonical_name


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
