"""The ledger contributor: accepted ShareRecords -> Redis ops for the region/firmware rollups.

Ops are plain increments, PFADD, ZINCRBY, a trim and EXPIRE: applying a batch's ops exactly once (what
the ledger guarantees) gives exact sums. Everything is pre-aggregated per batch, so the number of ops
grows with the regions and buckets a batch touches, not with its shares.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from pool.config.geo import GeoConfig
from pool.geo import keys as K
from pool.geo.keys import GeoKeys
from pool.geo.locator import DatabaseInfo
from pool.shares.record import RedisOp, ShareRecord

_EPOCH_DAY = dt.date(1970, 1, 1)


def miner_id(worker: str) -> str:
    """A stable, non-reversible-in-practice id for a miner (its full worker name)."""
    return hashlib.blake2b(worker.encode(), digest_size=8).hexdigest()


def _f(value: float) -> str:
    return repr(float(value))


class GeoRollup:
    """A ledger contributor: `ops(records, batch_id) -> list[RedisOp]`.

    `databases` returns the databases in use (normally `locator.databases`); each day records which
    ones tagged how much difficulty, so a database swap mid-period shows up in the export metadata.
    """

    def __init__(self, config: GeoConfig, databases: Callable[[], Sequence[DatabaseInfo]] = tuple,
                 prefix: str = "gs") -> None:
        self.config = config
        self.keys = GeoKeys(prefix)
        self._databases = databases
        self._miner_ids: dict[str, str] = {}

    def _miner(self, worker: str) -> str:
        found = self._miner_ids.get(worker)
        if found is None:
            if len(self._miner_ids) > 200_000:
                self._miner_ids.clear()
            found = self._miner_ids[worker] = miner_id(worker)
        return found

    def ops(self, records: Iterable[ShareRecord], batch_id: str = "") -> list[RedisOp]:
        cfg, keys = self.config, self.keys
        # (key) -> field -> value; float and int metrics kept apart for HINCRBYFLOAT vs HINCRBY.
        floats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        ints: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        hlls: dict[str, set[str]] = defaultdict(set)
        tops: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        db_day: dict[dt.date, float] = defaultdict(float)
        ttl: dict[str, int] = {}
        days: dict[int, dt.date] = {}
        for rec in records:
            seconds = int(rec.timestamp)
            day_number = seconds // 86400
            day = days.get(day_number)
            if day is None:
                day = days[day_number] = _EPOCH_DAY + dt.timedelta(days=day_number)
            in_day = seconds - day_number * 86400
            hh = f"{in_day // 3600:02d}"
            hhmm = f"{hh}{(in_day % 3600) // 60:02d}"
            region = K.region_id(rec.country, rec.subdivision)
            fw_region = f"{rec.firmware}{K.SEP}{region}"
            miner = self._miner(rec.worker)
            diff = rec.difficulty
            stat_keys = (keys.minute(day, hhmm), keys.hour(day, hh), keys.day(day))
            for key in stat_keys:
                fl, it = floats[key], ints[key]
                fl[f"{K.DIFF}{K.SEP}{region}"] += diff
                it[f"{K.COUNT}{K.SEP}{region}"] += 1
                if rec.hosting:
                    fl[f"{K.HOSTING}{K.SEP}{region}"] += diff
                if rec.farm_proxy:
                    fl[f"{K.PROXY}{K.SEP}{region}"] += diff
                fl[f"{K.FW_DIFF}{K.SEP}{fw_region}"] += diff
                it[f"{K.FW_COUNT}{K.SEP}{fw_region}"] += 1
            ttl[stat_keys[0]] = cfg.minute_ttl
            ttl[stat_keys[1]] = cfg.hour_ttl
            ttl[stat_keys[2]] = cfg.day_ttl
            for key, seconds_kept in (
                (keys.miners_hour(day, hh, region), cfg.hour_ttl),
                (keys.miners_day(day, region), cfg.miner_ttl),
                (keys.fw_miners_day(day, rec.firmware, rec.country), cfg.miner_ttl),
            ):
                hlls[key].add(miner)
                ttl[key] = seconds_kept
            for key in (keys.top_day(day, region), keys.fw_top_day(day, rec.firmware, rec.country)):
                tops[key][miner] += diff
                ttl[key] = cfg.miner_ttl
            db_day[day] += diff

        ops: list[RedisOp] = []
        for key, fields in floats.items():
            ops.extend(RedisOp("HINCRBYFLOAT", key, (field, _f(value))) for field, value in fields.items())
        for key, counts in ints.items():
            ops.extend(RedisOp("HINCRBY", key, (field, value)) for field, value in counts.items())
        for key, members in hlls.items():
            ops.append(RedisOp("PFADD", key, tuple(sorted(members))))
        keep = cfg.top_miners_kept
        for key, sums in tops.items():
            ops.extend(RedisOp("ZINCRBY", key, (_f(value), member)) for member, value in sums.items())
            # Keep the largest `keep` miners; the export bounds the trimmed ones by the smallest kept.
            ops.append(RedisOp("ZREMRANGEBYRANK", key, (0, -(keep + 1))))
        idents = [info.ident for info in self._databases() if info.role == "location"] or ["location|none|"]
        for day, diff in db_day.items():
            key = keys.databases(day)
            ops.extend(RedisOp("HINCRBYFLOAT", key, (ident, _f(diff))) for ident in idents)
            ttl[key] = cfg.day_ttl
        ops.extend(RedisOp("EXPIRE", key, (seconds_kept,)) for key, seconds_kept in ttl.items())
        return ops

    def network_difficulty_ops(self, difficulty: float, at: float | None = None) -> list[RedisOp]:
        """The network difficulty sample for the minute `at` falls in (HSET: repeating it is harmless)."""
        if not difficulty > 0:
            raise ValueError(f"network difficulty must be > 0, got {difficulty}")
        when = dt.datetime.fromtimestamp(time.time() if at is None else at, dt.UTC)
        key = self.keys.network(when.date())
        return [RedisOp("HSET", key, (f"{when:%H%M}", _f(difficulty))),
                RedisOp("EXPIRE", key, (self.config.day_ttl,))]


class NetworkDifficultyRecorder:
    """What the app calls periodically (e.g. on every new block template) to record coverage data."""

    def __init__(self, redis, rollup: GeoRollup) -> None:  # redis: redis.asyncio.Redis
        self._redis = redis
        self._rollup = rollup

    async def record_network_difficulty(self, difficulty: float, at: float | None = None) -> None:
        await apply_ops(self._redis, self._rollup.network_difficulty_ops(difficulty, at))


async def apply_ops(redis, ops: Sequence[RedisOp]) -> None:
    """Apply ops in one pipeline (tests, benchmark, and the recorder; the ledger has its own path)."""
    pipe = redis.pipeline(transaction=False)
    for op in ops:
        pipe.execute_command(op.command, op.key, *op.args)
    await pipe.execute()
