"""The one reader of the ledger's hashrate buckets: windows and histories of the pool, an account
or a worker, each figure stating what it covers and how sure it is.

hashrate = accepted difficulty x 2^32 / seconds covered. A window reads the fine buckets (10 s) up
to an hour and the coarse ones (10 min) beyond; it includes the bucket in progress, starts on the
first edge common to the ledger's buckets and the geo rollups' at or after now - window (10 s for
1m, a minute up to an hour, 10 min beyond: window_alignment; never more than the window; the
regions read the same span and divide by the pool's seconds, so they sum to the pool), and covers
from the later of that start and the field's first observation to now, only the seconds of it the
pool was up (pool.shares.uptime: an outage inside a window is no observed time, in windows, chart
steps and exports alike). First observations are durable (sorted sets written by the ledger with
ZADD LT: the pool's start, each worker's and account's first authorize, carried by its shares, and
first share), so a pool 40 s old, a worker that joined late or a restarted process is never divided
by time nobody observed. Share arrivals are Poisson: the 95 % bounds come from the share count
(buckets hold it beside the difficulty).

The estimator. A miner of hashrate h finds shares of difficulty D as a Poisson process of rate
lambda = h / (D x 2^32). Observed from a start time fixed independently of the arrivals (the pool's
start, a worker's authorize, a window's edge), the count N over T seconds is Poisson(lambda T), so
N / T is unbiased (and the maximum-likelihood estimate): the figure is accepted difficulty x 2^32 / T.
When only the first share's time is known, that share is what started the clock, not a random
arrival inside it: counting it biases a young miner upwards (a 1 kH/s miner seen 25 s from its
first share reads 1 share in 25 s). The arrivals after it are again Poisson over the T seconds since
it, so such a figure counts N - 1 (`first_share_excluded`), only for workers with no authorize time.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from pool.config.ledger import LedgerConfig
from pool.shares import lua
from pool.shares.keys import Keys
from pool.shares.redis_conn import RedisClient, Script, run_scripts, text
from pool.shares.uptime import UpTimeline, read_timeline

HASHES_PER_DIFFICULTY = 2**32
Z95 = 1.959964                      # two-sided 95 % normal quantile
DEFAULT_MIN_SHARES = 30             # below this many shares a figure is "warming up"
# Standard windows: API name -> seconds.
WINDOWS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21_600, "24h": 86_400}
FINE_WINDOW_LIMIT = 3600            # windows up to this read fine buckets, longer ones coarse buckets
HISTORY_POINTS = 120                # a history has at most about this many points
FIELDS_PER_CALL = 1000              # fields summed by one WINDOW_SUMS call (Lua's unpack() takes ~8000 values)
_WINDOW_SUMS = Script(lua.WINDOW_SUMS)
BASIS = ("accepted share difficulty x 2^32 / seconds observed (from the later of the window's start, on a "
         "bucket edge at or after now - window, and the first observation: the pool's start for the pool and "
         "every region, the first authorize of a worker or account, else its first share, which then is not "
         "counted), counting only the seconds the pool was up (10 s heartbeat marks: an outage is not observed "
         "time); 95 % interval from the share count (Poisson, Wilson-Hilferty)")


def hashrate(difficulty: float, seconds: float) -> float:
    return difficulty * HASHES_PER_DIFFICULTY / seconds if seconds > 0 else 0.0


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


def scaled_bounds(value: float, shares: int) -> tuple[float, float | None]:
    """95 % bounds of a rate built on `shares` Poisson arrivals: value x lower(N)/N .. upper(N)/N
    (mean difficulty per share held fixed). No upper scale without a share."""
    if shares <= 0:
        return 0.0, None
    low_n, high_n = poisson_bounds(shares)
    return value * low_n / shares, value * high_n / shares


def window_alignment(window_s: int, resolution: int) -> int:
    """Where a window's data starts: on an edge of the ledger's buckets that the geo rollups have
    too, so the pool's and the regions' figures of one window read the same shares and divide by
    the same seconds (they sum exactly, 1m included). A minute: the fine bucket (10 s; the rollups
    keep fine buckets for these edges). Up to an hour: a minute (the ranking's per-minute sums,
    pool.shares.ranking, start there too). Beyond: the coarse bucket's edges that fall on a minute
    (10 min), as fine buckets are not kept for a day, so a 24h window covers 23 h 50 min to 24 h and
    its covered_seconds say which."""
    if window_s <= 60:
        return resolution
    return math.lcm(resolution, 60)


def window_first(now: float, window_s: int, align: int) -> int:
    """Start of the oldest bucket a window reads: the first multiple of `align` at or after
    now - window, so a window never covers more than its length."""
    return math.ceil((now - window_s) / align) * align


def covered_seconds(window_start: float, now: float, first_observed: float | None,
                    uptime: UpTimeline | None = None) -> float:
    """Seconds a window really saw: from the later of its start and the first observation (pool
    start, a worker's authorize or first share) to now, so a young pool or a late worker is not
    divided by time nobody observed; with `uptime`, only the seconds of that span the pool was up."""
    start = window_start if first_observed is None else max(window_start, first_observed)
    if uptime is not None:
        return uptime.observed(start, now)
    return max(0.0, now - start)


class HashrateFigure(msgspec.Struct, frozen=True, kw_only=True):
    """One hashrate figure as shown to a person: value, what it covers and how sure it is.

    A worker's or account's clock starts at its first authorize (every share counts: N / T is the
    unbiased Poisson rate). Where no authorize time is known it starts at its first share, which
    says when observation began, not how fast it mines: that share is not counted (N - 1 shares over
    the time since it; the interval from N - 1 too). See the module's docstring.
    """

    hashrate: float             # H/s: difficulty x 2^32 / covered_seconds
    low: float                  # 95 % bounds, H/s, from the share count (Poisson)
    high: float | None          # None when no share was counted (no scale for an upper bound)
    shares: int                 # accepted shares counted
    difficulty: float           # accepted difficulty counted
    window_seconds: int         # the window's nominal length
    covered_seconds: float      # seconds actually observed (see covered_seconds)
    warming_up: bool            # fewer than the configured minimum of shares: show no number
    first_share_excluded: bool = False  # the share that started the clock is not in the estimate


def hashrate_figure(window_seconds: int, window_start: float, now: float, difficulty: float, shares: int,
                    first_observed: float | None = None, min_shares: int = DEFAULT_MIN_SHARES,
                    first_is_share: bool = False, uptime: UpTimeline | None = None) -> HashrateFigure:
    """The figure for `shares` accepted shares of total `difficulty` in a window starting at
    `window_start` (the oldest bucket read). `first_is_share`: `first_observed` is the time of the
    entity's first share (a worker or account with no authorize time, not the pool's start); when
    it falls inside the window that share started the clock and is left out (its difficulty taken
    as the mean). Otherwise `first_observed` (the pool's start, a worker's authorize) was fixed
    before any share it counts: N shares over the T seconds since is the unbiased rate. With
    `uptime`, T counts only the seconds the pool was up (an outage inside the window is not observed
    time; pool.shares.uptime)."""
    seconds = covered_seconds(window_start, now, first_observed, uptime)
    excluded = first_is_share and first_observed is not None and first_observed > window_start and shares > 0
    counted, work = (shares - 1, difficulty * (shares - 1) / shares) if excluded else (shares, difficulty)
    value = hashrate(work, seconds)
    low, high = scaled_bounds(value, counted)
    if excluded and counted == 0:
        high = hashrate(difficulty * poisson_bounds(0)[1], seconds)   # no share yet beyond the clock's
    return HashrateFigure(hashrate=value, low=low, high=high, shares=shares, difficulty=difficulty,
                          window_seconds=window_seconds, covered_seconds=seconds, warming_up=counted < min_shares,
                          first_share_excluded=excluded)


def observed_figure(window_seconds: int, seconds: float, difficulty: float, shares: int,
                    min_shares: int = DEFAULT_MIN_SHARES) -> HashrateFigure:
    """The figure of `shares` shares of total `difficulty` over `seconds` observed (a region of a
    pool window: the pool's seconds, HashrateBook.pool_coverage)."""
    value = hashrate(difficulty, seconds)
    low, high = scaled_bounds(value, shares)
    return HashrateFigure(hashrate=value, low=low, high=high, shares=shares, difficulty=difficulty,
                          window_seconds=window_seconds, covered_seconds=seconds, warming_up=shares < min_shares)


def empty_figure(window_seconds: int) -> HashrateFigure:
    """What a window says when nothing could be read (Redis down)."""
    return HashrateFigure(hashrate=0.0, low=0.0, high=None, shares=0, difficulty=0.0,
                          window_seconds=window_seconds, covered_seconds=0.0, warming_up=True)


def describe(figure: HashrateFigure) -> str:
    """The figure's basis in words (exports' metadata, CLI)."""
    return (f"accepted difficulty x 2^32 over {figure.covered_seconds:.0f} s observed of a "
            f"{figure.window_seconds} s window; 95 % interval from {figure.shares} shares (Poisson, Wilson-Hilferty)")


class HashrateWindows(msgspec.Struct, kw_only=True):
    """Hashrate over the standard windows, from accepted share difficulty."""

    m1: HashrateFigure = msgspec.field(default_factory=lambda: empty_figure(60), name="1m")
    m5: HashrateFigure = msgspec.field(default_factory=lambda: empty_figure(300), name="5m")
    m15: HashrateFigure = msgspec.field(default_factory=lambda: empty_figure(900), name="15m")
    h1: HashrateFigure = msgspec.field(default_factory=lambda: empty_figure(3600), name="1h")
    h6: HashrateFigure = msgspec.field(default_factory=lambda: empty_figure(21_600), name="6h")
    h24: HashrateFigure = msgspec.field(default_factory=lambda: empty_figure(86_400), name="24h")


# API window name -> HashrateWindows attribute.
WINDOW_FIELDS: dict[str, str] = {"1m": "m1", "5m": "m5", "15m": "m15", "1h": "h1", "6h": "h6", "24h": "h24"}


class HashratePoint(msgspec.Struct, kw_only=True):
    t: float                            # start of the step (unix seconds)
    seconds: float                      # seconds of the step observed (the last one is in progress)
    hashrate: float
    shares: int = 0
    low: float = 0.0                    # 95 % bounds from the step's share count
    high: float | None = None


class HashrateHistory(msgspec.Struct, kw_only=True):
    window_seconds: int
    step_seconds: int
    points: list[HashratePoint]


def bucket_starts(now: float, window_s: int, resolution: int) -> list[int]:
    """Bucket starts covering [now - window_s, now], oldest first."""
    last = int(now // resolution) * resolution
    first = int((now - window_s) // resolution) * resolution
    return list(range(first, last + 1, resolution))


def window_buckets(now: float, window_s: int, resolution: int) -> list[int]:
    """Bucket starts of a hashrate window, oldest first: from window_first (aligned, see
    window_alignment) to the bucket in progress."""
    first = window_first(now, window_s, window_alignment(window_s, resolution))
    last = int(now // resolution) * resolution
    return list(range(first, last + 1, resolution))


def first_in_buckets(fine_first: int | None, coarse_first: int | None, coarse: int) -> float | None:
    """Start of the bucket holding a field's first share among the buckets read (data written before
    first observations were recorded): the fine bucket when it lies in the coarse period where the
    data begins (fine buckets are read for the current period and the windows' edges), else that
    coarse period. None when nothing was read."""
    if coarse_first is None:
        return None if fine_first is None else float(fine_first)
    if fine_first is not None and fine_first // coarse * coarse == coarse_first:
        return float(fine_first)
    return float(coarse_first)


def observation_start(first: float | None, authorized: float | None) -> tuple[float | None, bool]:
    """(start of observation, started by a share) of a worker or account from its durable first
    share and first authorize. An authorize at or before the first share starts the clock with no
    share in hand: every share counts. Otherwise the first share started it (see hashrate_figure)."""
    if authorized is not None and (first is None or authorized <= first):
        return authorized, False
    return first, first is not None


async def _scores(client: RedisClient, pairs: Sequence[tuple[str, str]]) -> list[float | None]:
    """ZMSCORE of (sorted set, member) pairs, one call per set, pipelined."""
    by_key: dict[str, list[tuple[int, str]]] = {}
    for i, (key, member) in enumerate(pairs):
        by_key.setdefault(key, []).append((i, member))
    out: list[float | None] = [None] * len(pairs)
    if not by_key:
        return out
    async with client.pipeline(transaction=False) as pipe:
        for key, members in by_key.items():
            pipe.zmscore(key, [m for _, m in members])
        replies = await pipe.execute()
    for members, scores in zip(by_key.values(), replies, strict=True):
        for (i, _), score in zip(members, scores, strict=True):
            out[i] = None if score is None else float(score)
    return out


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def count_field(field: str) -> str:
    """The bucket field holding the share count of a difficulty field ("w:x" -> "wn:x"; the pool's
    "d" -> "n")."""
    if field == "d":
        return "n"
    kind, _, name = field.partition(":")
    return f"{kind}n:{name}"


class HashrateBook:
    """Hashrate windows and histories of the pool, accounts and workers."""

    def __init__(self, keys: Keys, config: LedgerConfig) -> None:
        self.keys = keys
        self.config = config

    @property
    def min_shares(self) -> int:
        return self.config.warming_up_shares

    def _plan(self, now: float) -> dict[str, tuple[int, list[int]]]:
        plan = {}
        for name, seconds in WINDOWS.items():
            resolution = self.config.fine_bucket_s if seconds <= FINE_WINDOW_LIMIT else self.config.coarse_bucket_s
            plan[name] = (resolution, window_buckets(now, seconds, resolution))
        return plan

    def window_start(self, window_s: int, now: float) -> int:
        """Start of the data a pool window of `window_s` reads (region windows read the same span)."""
        resolution = self.config.fine_bucket_s if window_s <= FINE_WINDOW_LIMIT else self.config.coarse_bucket_s
        return window_first(now, window_s, window_alignment(window_s, resolution))

    async def pool_first(self, client: RedisClient) -> float | None:
        """The pool's durable first observation (the earliest start of its processes)."""
        return (await self.first_observed(client, self.keys.pool, ["d"]))[0]

    def first_key(self, tag: str, field: str) -> tuple[str, str]:
        """(sorted set, member) holding the first observation of a bucket field."""
        if tag == self.keys.pool:
            return self.keys.first_seen(tag), field
        kind, _, name = field.partition(":")
        return self.keys.first_seen(tag, kind), name

    async def first_observed(self, client: RedisClient, tag: str, fields: Sequence[str]) -> list[float | None]:
        """Durable first observations of fields of one hash tag (None where none is recorded): the
        pool's first start, a worker's or account's first share."""
        return await _scores(client, [self.first_key(tag, field) for field in fields])

    async def observation_starts(self, client: RedisClient, tag: str,
                                 fields: Sequence[str]) -> list[tuple[float | None, bool]]:
        """Where the books started observing each field, durably: (time, whether that time is a
        share's). The pool's first start; a worker's first authorize (an account's: of any of its
        workers), or its first share where no authorize was recorded (shares from before authorize
        times were kept, or from a client that did not say): see estimate_clock."""
        return (await self.observation_starts_of(client, [(tag, fields)]))[0]

    async def observation_starts_of(self, client: RedisClient, wanted: Sequence[tuple[str, Sequence[str]]],
                                    ) -> list[list[tuple[float | None, bool]]]:
        """observation_starts of several (tag, fields), read in one pipeline."""
        pairs: list[tuple[str, str]] = []
        spans: list[tuple[bool, int, int]] = []           # (is the pool, first pair, field count)
        for tag, fields in wanted:
            own = [self.first_key(tag, field) for field in fields]
            spans.append((tag == self.keys.pool, len(pairs), len(own)))
            pairs += own
            if tag != self.keys.pool:
                pairs += [(self.keys.authorized(tag, field.partition(":")[0]), member)
                          for field, (_, member) in zip(fields, own, strict=True)]
        scores = await _scores(client, pairs)
        out = []
        for is_pool, at, count in spans:
            firsts = scores[at:at + count]
            if is_pool:
                out.append([(first, False) for first in firsts])
            else:
                out.append([observation_start(first, authorized) for first, authorized in
                            zip(firsts, scores[at + count:at + 2 * count], strict=True)])
        return out

    async def windows(self, client: RedisClient, tag: str, fields: Sequence[str],
                      now: float | None = None) -> dict[str, HashrateWindows]:
        """Windows for several fields of one hash tag (the pool's, or one shard's)."""
        return await self.windows_by_tag(client, {tag: list(fields)}, now)

    async def windows_by_tag(self, client: RedisClient, fields_by_tag: dict[str, list[str]],
                             now: float | None = None) -> dict[str, HashrateWindows]:
        """Windows for fields of several hash tags: each tag's buckets are summed inside Redis
        (lua.WINDOW_SUMS, every bucket read once though the windows overlap), the tags at once."""
        now = time.time() if now is None else now
        plan = self._plan(now)
        wanted = [(tag, chunk) for tag, fields in fields_by_tag.items()
                  for chunk in _chunks(list(dict.fromkeys(fields)), FIELDS_PER_CALL)]
        if not wanted:
            return {}
        ranges = self._ranges(now)
        # The shards' sums in one pipeline, their first observations in another, at once.
        uptime, sums, durable = await asyncio.gather(
            self.timeline(client, now),
            run_scripts(client, [self._sums(tag, fields, ranges) for tag, fields in wanted]),
            self.observation_starts_of(client, wanted))
        out: dict[str, HashrateWindows] = {}
        for (_tag, fields), read in zip(wanted, zip(sums, durable, strict=True), strict=True):
            out.update(self._figures(plan, read, fields, now, uptime))
        return out

    async def timeline(self, client: RedisClient, now: float, span: int = max(WINDOWS.values())) -> UpTimeline:
        """When the pool was up over the last `span` seconds (pool.shares.uptime)."""
        return await read_timeline(client, self.keys, self.config.fine_bucket_s, self.config.coarse_bucket_s,
                                   min(self.window_start(span, now), now - span), now)

    async def pool_coverage(self, client: RedisClient, window_s: int, now: float) -> tuple[int, float]:
        """(start of the data, seconds observed) of the pool's window: what every region of it divides by."""
        start = self.window_start(window_s, now)
        uptime, first = await asyncio.gather(self.timeline(client, now, window_s), self.pool_first(client))
        return start, covered_seconds(start, now, first, uptime)

    def _ranges(self, now: float) -> list[int]:
        """What the windows read (lua.WINDOW_SUMS): per window two ranges of fine bucket starts and
        one of coarse ones (start, end exclusive). A window up to an hour is its whole coarse buckets
        plus the fine ones at its two edges: the same 10 s buckets, about a third of the reads."""
        fine, coarse = self.config.fine_bucket_s, self.config.coarse_bucket_s
        current = int(now // coarse) * coarse
        out: list[int] = []
        for seconds in WINDOWS.values():
            if seconds > FINE_WINDOW_LIMIT:
                starts = window_buckets(now, seconds, coarse)
                out += [0, 0, 0, 0, starts[0], starts[-1] + coarse]
                continue
            starts = window_buckets(now, seconds, fine)
            end = starts[-1] + fine
            whole_from = -(-starts[0] // coarse) * coarse        # the first coarse boundary in the window
            if whole_from < current:
                out += [starts[0], whole_from, current, end, whole_from, current]
            else:
                out += [starts[0], end, 0, 0, 0, 0]
        return out

    def _sums(self, tag: str, fields: list[str], ranges: list[int]) -> tuple[Script, list[str], list[Any]]:
        """One tag's WINDOW_SUMS call."""
        prefix = self.keys.bucket_prefix(tag)
        args: list[str | int] = [prefix, self.config.fine_bucket_s, self.config.coarse_bucket_s, len(WINDOWS), *ranges]
        for field in fields:
            args += [field, count_field(field)]
        return _WINDOW_SUMS, [prefix], args

    def _figures(self, plan: dict[str, tuple[int, list[int]]], read: tuple[list[Any], list[tuple[float | None, bool]]],
                 fields: list[str], now: float, uptime: UpTimeline) -> dict[str, HashrateWindows]:
        sums, durable = read
        coarse, units = self.config.coarse_bucket_s, self.config.bucket_units
        per_field = len(plan) * 2 + 2
        out = {}
        for i, field in enumerate(fields):
            row = sums[i * per_field:(i + 1) * per_field]
            fine_at, coarse_at = int(row[-2]), int(row[-1])
            in_buckets = first_in_buckets(fine_at or None, coarse_at or None, coarse)
            first, is_share = durable[i]
            # Data older than the recorded first share (written before first shares were kept) wins.
            if first is None or (in_buckets is not None and in_buckets + coarse <= first):
                first, is_share = in_buckets, False
            values = {}
            for w, (name, (_res, starts)) in enumerate(plan.items()):
                difficulty = float(text(row[2 * w])) / units
                shares = int(float(text(row[2 * w + 1])))
                values[WINDOW_FIELDS[name]] = hashrate_figure(WINDOWS[name], starts[0], now, difficulty, shares,
                                                              first, self.min_shares, is_share, uptime)
            out[field] = HashrateWindows(**values)
        return out

    async def pool_windows(self, client: RedisClient, now: float | None = None) -> HashrateWindows:
        return (await self.windows(client, self.keys.pool, ["d"], now))["d"]

    def history_plan(self, window: int) -> tuple[int, int]:
        """(bucket resolution, step) for a history window."""
        fine, coarse = self.config.fine_bucket_s, self.config.coarse_bucket_s
        resolution = fine if window <= self.config.fine_retention_s - fine else coarse
        step = resolution * max(1, math.ceil(window / resolution / HISTORY_POINTS))
        return resolution, step

    async def history(self, client: RedisClient, tag: str, field: str, window: int,
                      now: float | None = None) -> HashrateHistory:
        """The same buckets as the windows, in steps; a step before the first observation is empty
        and the first observed step is divided by the part of it that was observed."""
        now = time.time() if now is None else now
        resolution, step = self.history_plan(window)
        starts = bucket_starts(now, window, resolution)
        count = count_field(field)
        async with client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hmget(self.keys.bucket(tag, resolution, start), [field, count])
            replies = await pipe.execute()
        durable = (await self.observation_starts(client, tag, [field]))[0][0]
        uptime = await self.timeline(client, now, window + step)
        per_step: dict[int, list[float]] = {}
        first_step = int((now - window) // step * step)
        for t in range(first_step, int(now) + 1, step):
            per_step[t] = [0.0, 0]
        for start, (value, n) in zip(starts, replies, strict=True):
            key = start // step * step
            slot = per_step.setdefault(key, [0.0, 0])
            slot[0] += int(value or 0) / self.config.bucket_units
            slot[1] += int(float(n or 0))
        first_bucket = next((float(s) for s, (value, _) in zip(starts, replies, strict=True) if value), None)
        # The recorded first observation, unless a bucket holds data from before it (written before
        # it was kept): then the start of that bucket (not of its step: a pool started late in a
        # 20-minute step is divided by the minutes it ran).
        first = durable
        if first is None or (first_bucket is not None and first_bucket + resolution <= first):
            first = first_bucket
        points = []
        for t, (difficulty, shares) in sorted(per_step.items()):
            seconds = uptime.observed(max(t, first if first is not None else t), min(t + step, now))
            value = hashrate(difficulty, max(seconds, 1.0)) if difficulty else 0.0
            low, high = scaled_bounds(value, int(shares))
            points.append(HashratePoint(t=float(t), seconds=seconds, hashrate=value, shares=int(shares),
                                        low=low, high=high))
        return HashrateHistory(window_seconds=window, step_seconds=step, points=points)

    async def pool_counts(self, client: RedisClient, seconds: int, now: float | None = None) -> tuple[int, float]:
        """(accepted shares, accepted difficulty) of the whole pool over the last `seconds`."""
        now = time.time() if now is None else now
        res = self.config.fine_bucket_s if seconds <= FINE_WINDOW_LIMIT else self.config.coarse_bucket_s
        starts = bucket_starts(now, seconds, res)
        async with client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hmget(self.keys.bucket(self.keys.pool, res, start), ["n", "d"])
            replies = await pipe.execute()
        count = sum(int(float(text(n) or 0)) for n, _ in replies)
        return count, sum(int(d or 0) for _, d in replies) / self.config.bucket_units
