"""When the pool was up: one bit per fine bucket (10 s) in which any of its processes ran, so a window,
a chart step or an export divides by the seconds the pool observed, never by an outage inside it.

Every process marks the fine buckets it is alive in (a heartbeat once per bucket; marks wait in
memory while Redis is down and go when it returns), and every share batch marks its shares' buckets,
so shares a journal replays after a crash never sit in a bucket marked down. A mark is a SETBIT:
several processes mark a bucket once, and the day's count grows only when the bit was new. In the
pool's slot:

    {P:pool}:up:<coarse start>   bitmap: bit i set = fine bucket i of that coarse bucket was up
    {P:pool}:upday               hash: unix day number -> seconds up that day (exports; kept)
    {P:pool}:first, member "up"  the earliest mark (ZADD LT). Before it the books hold no marks (a
                                 pool upgraded from a release without them): that time counts as
                                 observed from the first observation on, as it did before.

A bucket counts whole once marked, so a process that starts or dies inside one adds at most one
bucket's seconds (10 s) per restart; the pool's first start is exact (its first observation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pool.shares import lua
from pool.shares.keys import Keys
from pool.shares.redis_conn import RedisClient, Script

UP_MEMBER = "up"                     # member of {P:pool}:first: the earliest up mark
DAY = 86_400
_UP_MARK = Script(lua.UP_MARK)
_UP_READ = Script(lua.UP_READ)


def up_key(keys: Keys, coarse_start: int) -> str:
    return f"{keys.pool}:up:{coarse_start}"


def up_day_key(keys: Keys) -> str:
    return f"{keys.pool}:upday"


def mark_args(fine_s: int, coarse_s: int, retention_s: int, starts: Iterable[int]) -> tuple[int, ...]:
    """Arguments of GS.UP (a batch op, key = the pool's tag) and of the UP_MARK script."""
    return (fine_s, coarse_s, retention_s, *sorted(set(starts)))


class UpMarks:
    """The fine buckets this process was up in and has not written yet (no I/O)."""

    def __init__(self, fine_s: int, keep_s: int) -> None:
        self.fine_s = fine_s
        self.keep_s = keep_s             # marks older than this are dropped unwritten (their bitmaps expired)
        self._pending: set[int] = set()
        self._last: int | None = None

    def beat(self, now: float) -> None:
        """The process runs at `now`: every bucket since the last one marked ran too (a slow event
        loop is not an outage)."""
        current = int(now // self.fine_s) * self.fine_s
        first = current if self._last is None else max(self._last + self.fine_s, current - self.keep_s)
        self._pending.update(range(first, current + 1, self.fine_s))
        self._last = current if self._last is None else max(self._last, current)

    def take(self, now: float) -> list[int]:
        oldest = now - self.keep_s
        marks = sorted(s for s in self._pending if s >= oldest)
        self._pending.clear()
        return marks

    def put_back(self, marks: Sequence[int]) -> None:
        self._pending.update(marks)

    @property
    def pending(self) -> int:
        return len(self._pending)


async def write_marks(client: RedisClient, keys: Keys, fine_s: int, coarse_s: int, retention_s: int,
                      marks: Sequence[int]) -> None:
    if marks:
        await _UP_MARK(client, [keys.pool], list(mark_args(fine_s, coarse_s, retention_s, marks)))


class UpTimeline:
    """Seconds the pool was up in any span, from the bitmaps of the coarse buckets read: O(1) per
    span after one pass over them (cumulative up seconds per coarse bucket)."""

    def __init__(self, fine_s: int, coarse_s: int, origin: int, bitmaps: Sequence[bytes | None],
                 since: float | None) -> None:
        self.fine_s, self.coarse_s, self.origin, self.since = fine_s, coarse_s, origin, since
        self.bits = coarse_s // fine_s
        self._bytes = math.ceil(self.bits / 8)
        self._values: list[int] = []
        self._cumulative: list[float] = [0.0]
        self._cache: dict[float, float] = {}
        for blob in bitmaps:
            value = int.from_bytes((blob or b"")[:self._bytes].ljust(self._bytes, b"\0"), "big")
            self._values.append(value)
            self._cumulative.append(self._cumulative[-1] + self._count(value, self.bits) * fine_s)

    def _count(self, value: int, k: int) -> int:
        """Set bits among the first k (bit 0 is the most significant of the first byte, as SETBIT has it)."""
        return (value >> (self._bytes * 8 - k)).bit_count() if k > 0 else 0

    def _up_until(self, t: float) -> float:
        """Up seconds from the origin to t (cached: the windows' edges and now repeat for every field)."""
        found = self._cache.get(t)
        if found is None:
            found = self._cache[t] = self._up_until_uncached(t)
        return found

    def _up_until_uncached(self, t: float) -> float:
        index = int((t - self.origin) // self.coarse_s)
        if index < 0:
            return 0.0
        if index >= len(self._values):
            return self._cumulative[-1]
        value = self._values[index]
        inside = t - (self.origin + index * self.coarse_s)
        k = int(inside // self.fine_s)
        partial = inside - k * self.fine_s
        bit = (value >> (self._bytes * 8 - 1 - k)) & 1 if k < self.bits else 0
        return self._cumulative[index] + self._count(value, k) * self.fine_s + bit * partial

    def observed(self, start: float, end: float) -> float:
        """Seconds of [start, end] the pool was up: all of it before the first mark (no marks kept
        then), the marked buckets after it."""
        if end <= start:
            return 0.0
        if self.since is None:
            return end - start
        unmarked = max(0.0, min(end, self.since) - start)
        start = max(start, self.since)
        if end <= start:
            return unmarked
        return unmarked + max(0.0, self._up_until(end) - self._up_until(start))


async def read_timeline(client: RedisClient, keys: Keys, fine_s: int, coarse_s: int, start: float,
                        now: float) -> UpTimeline:
    """The up marks of [start, now] and the earliest mark: one script in the pool's slot (a cluster
    pipeline takes no MGET; a day is 145 bitmaps)."""
    origin = int(start // coarse_s) * coarse_s
    starts = range(origin, int(now // coarse_s) * coarse_s + 1, coarse_s)
    *blobs, since = await _UP_READ(client, [up_key(keys, s) for s in starts] + [keys.first_seen(keys.pool)],
                                   [UP_MEMBER])
    return UpTimeline(fine_s, coarse_s, origin, blobs, None if since is None else float(since))


async def up_by_day(client: RedisClient, keys: Keys,
                    days: Sequence[int]) -> tuple[float | None, float | None, dict[int, float]]:
    """(earliest mark, the pool's first start, seconds up per unix day number) for the exports."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.zmscore(keys.first_seen(keys.pool), [UP_MEMBER, "d"])
        if days:
            pipe.hmget(up_day_key(keys), [str(d) for d in days])
        replies = await pipe.execute()
    since, started = (None if v is None else float(v) for v in replies[0])
    counts = replies[1] if days else []
    return since, started, {d: float(c) for d, c in zip(days, counts, strict=True) if c is not None}


def observed_in_period(begin: float, finish: float, now: float, observed_from: float | None,
                       since: float | None, up_seconds: Iterable[float], started: float | None = None) -> float:
    """Seconds the pool was observed in the period [begin, finish) up to now: before the first up
    mark, from the later of the period's start and the first observation (as without marks); from
    the first mark on, the seconds marked up in the period's days, never more than the time since
    the later of the first mark and the pool's first start (`started`: a young pool's first bucket
    is marked whole, though it ran for part of it)."""
    end = min(finish, max(now, begin))
    opened = begin if observed_from is None else min(max(begin, observed_from), finish)
    if since is None:
        return max(0.0, end - opened)
    unmarked = max(0.0, min(end, since) - opened)
    marked_from = max(begin, since, started if started is not None else since)
    return unmarked + min(sum(up_seconds), max(0.0, end - marked_from))
