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
from pool.geo.locator import DatabaseInfo, GeoReload
from pool.shares.redis_ops import RedisOp, split_op
from pool.stratum.events import ShareRecord

_EPOCH_DAY = dt.date(1970, 1, 1)


def miner_id(identity: str) -> str:
    """A stable id for a miner (its account or worker name, per geo.miner_identity) that does not
    spell the name out in Redis or exports."""
    return hashlib.blake2b(identity.encode(), digest_size=8).hexdigest()


def _f(value: float) -> str:
    return repr(float(value))


class GeoRollup:
    """A ledger contributor: `ops(records, batch_id) -> list[RedisOp]`.

    `databases` returns the databases in use (normally `locator.databases`); each day records which
    ones tagged how much difficulty, so a database swap mid-period shows up in the export metadata.
    """

    def __init__(self, config: GeoConfig, databases: Callable[[], Sequence[DatabaseInfo]] = tuple,
                 prefix: str = "gs", fine_s: int = 10) -> None:
        if fine_s <= 0 or 60 % fine_s:
            raise ValueError(f"the fine bucket must divide a minute, got {fine_s} s")
        self.config = config
        self.keys = GeoKeys(prefix)
        self.fine_s = fine_s            # the ledger's fine bucket: live windows read the same edges
        self._databases = databases
        self._miner_ids: dict[str, str] = {}
        self._first_sent: set[str] = set()     # regions whose first share this process reported

    def apply_reload(self, plan: GeoReload) -> None:
        """A config reload's [geo] (retention, privacy rules...): read from the next batch on."""
        if plan.applied:
            self.config = plan.config

    def _miner(self, identity: str) -> str:
        found = self._miner_ids.get(identity)
        if found is None:
            if len(self._miner_ids) > 200_000:
                self._miner_ids.clear()
            found = self._miner_ids[identity] = miner_id(identity)
        return found

    def ops(self, records: Iterable[ShareRecord], batch_id: str = "") -> list[RedisOp]:
        # First aggregate at the finest grain with cheap tuple keys (the hot loop), then expand the
        # aggregates into fine (the ledger's 10 s) / minute / hour / day fields: the per-share cost
        # stays a few dict updates.
        cells: dict[tuple[int, str, str, str], list[float]] = {}
        hour_miners: dict[tuple[int, str, str], set[str]] = defaultdict(set)
        day_top: dict[tuple[int, str, str], dict[str, float]] = defaultdict(dict)
        fw_top: dict[tuple[int, str, str], dict[str, float]] = defaultdict(dict)
        miner_ids = self._miner_ids
        by_account = self.config.miner_identity == "account"
        fine_s = self.fine_s
        per_minute = 60 // fine_s
        for rec in records:
            fine = int(rec.timestamp) // fine_s
            country, subdivision, diff = rec.country, rec.subdivision, rec.difficulty
            key = (fine, country, subdivision, rec.firmware)
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = [0.0, 0, 0.0, 0.0, rec.timestamp]
            elif rec.timestamp < cell[4]:
                cell[4] = rec.timestamp
            cell[0] += diff
            cell[1] += 1
            if rec.hosting:
                cell[2] += diff
            if rec.farm_proxy:
                cell[3] += diff
            identity = rec.account if by_account else rec.worker
            miner = miner_ids.get(identity) or self._miner(identity)
            minute = fine // per_minute
            hour_miners[(minute // 60, country, subdivision)].add(miner)
            day = minute // 1440
            top = day_top[(day, country, subdivision)]
            top[miner] = top.get(miner, 0.0) + diff
            top = fw_top[(day, rec.firmware, country)]
            top[miner] = top.get(miner, 0.0) + diff
        return self._expand(cells, hour_miners, day_top, fw_top)

    def _expand(self, cells, hour_miners, day_top, fw_top) -> list[RedisOp]:
        cfg, keys = self.config, self.keys
        floats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        ints: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        ttl: dict[str, int] = {}
        db_day: dict[dt.date, float] = defaultdict(float)
        dates: dict[int, dt.date] = {}

        def date_of(day_number: int) -> dt.date:
            found = dates.get(day_number)
            if found is None:
                found = dates[day_number] = _EPOCH_DAY + dt.timedelta(days=day_number)
            return found

        fine_keys: dict[int, tuple[str, str, str, str]] = {}
        first: dict[str, float] = {}
        fine_s = self.fine_s
        for (fine, country, subdivision, firmware), (diff, count, hosting, proxy, earliest) in cells.items():
            stat_keys = fine_keys.get(fine)
            if stat_keys is None:
                minute = fine * fine_s // 60
                day = date_of(minute // 1440)
                in_day = minute % 1440
                hh = f"{in_day // 60:02d}"
                hhmm = f"{hh}{in_day % 60:02d}"
                stat_keys = fine_keys[fine] = (
                    keys.fine(day, fine_s, f"{hhmm}{fine * fine_s % 60:02d}"), keys.minute(day, hhmm),
                    keys.hour(day, hh), keys.day(day))
            region = K.region_id(country, subdivision)
            if earliest < first.get(region, float("inf")) and region not in self._first_sent:
                first[region] = earliest
            fw_region = f"{firmware}{K.SEP}{region}"
            for n, key in enumerate(stat_keys):
                fl, it = floats[key], ints[key]
                fl[f"{K.DIFF}{K.SEP}{region}"] += diff
                it[f"{K.COUNT}{K.SEP}{region}"] += int(count)
                if not n:
                    continue    # fine buckets: difficulty and count only (the live windows' edges)
                if hosting:
                    fl[f"{K.HOSTING}{K.SEP}{region}"] += hosting
                if proxy:
                    fl[f"{K.PROXY}{K.SEP}{region}"] += proxy
                if n > 1:  # firmware from the hour up: minute buckets stay small (they feed dashboards)
                    fl[f"{K.FW_DIFF}{K.SEP}{fw_region}"] += diff
                    it[f"{K.FW_COUNT}{K.SEP}{fw_region}"] += int(count)
            ttl[stat_keys[0]] = cfg.fine_ttl
            ttl[stat_keys[1]] = cfg.minute_ttl
            ttl[stat_keys[2]] = cfg.hour_ttl
            ttl[stat_keys[3]] = cfg.day_ttl
            db_day[date_of(minute // 1440)] += diff

        ops: list[RedisOp] = []
        for key, fields in floats.items():
            ops.extend(RedisOp("HINCRBYFLOAT", key, (field, _f(value))) for field, value in fields.items())
        for key, counts in ints.items():
            ops.extend(RedisOp("HINCRBY", key, (field, value)) for field, value in counts.items())
        for (hour, country, subdivision), members in hour_miners.items():
            key = keys.miners_hour(date_of(hour // 24), f"{hour % 24:02d}", K.region_id(country, subdivision))
            ops += split_op("PFADD", key, sorted(members), 1)     # a large batch: in parts, same union
            ttl[key] = cfg.hour_ttl
        keep = cfg.top_miners_kept
        for tops, hll_key, top_key in ((day_top, keys.miners_day, keys.top_day),
                                       (fw_top, None, None)):
            for (day_number, a, b), sums in tops.items():
                day = date_of(day_number)
                if hll_key is not None:
                    region = K.region_id(a, b)
                    hkey, zkey = hll_key(day, region), top_key(day, region)
                else:
                    hkey, zkey = keys.fw_miners_day(day, a, b), keys.fw_top_day(day, a, b)
                ops += split_op("PFADD", hkey, sorted(sums), 1)
                ops.extend(RedisOp("ZINCRBY", zkey, (_f(value), member)) for member, value in sums.items())
                # Keep the largest `keep` miners; an export bounds the trimmed ones by the smallest kept.
                ops.append(RedisOp("ZREMRANGEBYRANK", zkey, (0, -(keep + 1))))
                ttl[hkey] = ttl[zkey] = cfg.miner_ttl
        idents = [info.ident for info in self._databases()] or ["location|none|"]
        for day, diff in db_day.items():
            key = keys.databases(day)
            ops.extend(RedisOp("HINCRBYFLOAT", key, (ident, _f(diff))) for ident in idents)
            ttl[key] = cfg.day_ttl
        ops.extend(RedisOp("EXPIRE", key, (seconds_kept,)) for key, seconds_kept in ttl.items())
        ops.extend(self._first_observations(first))
        return ops

    def _first_observations(self, first: dict[str, float]) -> list[RedisOp]:
        """ZADD LT of the first share of regions (and of the pool, "*") not reported yet by this process."""
        if K.ANY_REGION not in self._first_sent and first:
            first[K.ANY_REGION] = min(first.values())
        if not first:
            return []
        if len(self._first_sent) > 100_000:
            self._first_sent.clear()
        self._first_sent.update(first)
        args: list[str] = ["LT"]
        for region, ts in first.items():
            args += (_f(ts), region)
        return [RedisOp("ZADD", self.keys.first_seen, tuple(args))]

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
