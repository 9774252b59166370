"""The ranking of workers and accounts by the hashrate figure the lists show: the 5-minute figure of
pool.shares.hashrate (the same buckets' sums, seconds covered and n - 1 rule), warming-up names after
the others.

The ledger writes every name's work per minute (difficulty in bucket units and share count, per
shard); while a rank window exists it also keeps running sums of the window's minutes in Redis, split
by the warming-up threshold into two sorted sets by difficulty (see lua.RANK_ADD). A reader moves the
window to the 5-minute figure's start (taking the minutes that left it out of the sums, exactly: they
are integers) and reads the head of each set: the 100 fastest of 50,000 workers read a few hundred
names, not 50,000. Names older than the window share one divisor (seconds since the window's start),
so their order is their sums' order; a young name (first share inside the window) may be observed
from inside it (from its authorize, or from its first share, which then does not count: see
hashrate.observation_start), so each is read and figured on its own.

The window moves once a minute (its start is on a minute). So that no reader pays for the move, the
windows have two slots: the read side's RankKeeper builds the next minute's window beside the
current one in the minute before (both then take the ledger's new shares), and the first reader
after the boundary finds it ready. The shards' calls of one list go in one pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from pool.aio import cancel_and_wait
from pool.config.ledger import LedgerConfig
from pool.shares import lua
from pool.shares.hashrate import (
    WINDOWS,
    HashrateBook,
    HashrateFigure,
    empty_figure,
    hashrate_figure,
    observation_start,
)
from pool.shares.keys import Keys
from pool.shares.redis_conn import RedisClient, Script, run_scripts, text
from pool.shares.uptime import UpTimeline

RANK_WINDOW_S = WINDOWS["5m"]       # lists sorted by hashrate rank by the 5-minute figure
RANK_MINUTE = 60                    # the ledger's rank sets hold a minute each
RANK_KEEP_S = 900                   # a minute's sets live this long after it; an unread window as long
RANK_MAX_LAG_S = 600                # a window further behind is rebuilt, not moved (its minutes may be gone)
RANK_PREPARE_AT_S = 30             # the keeper builds the next minute's rank windows this far into each minute
RANK_KINDS = ("w", "a")             # workers and accounts
_RANK_WINDOW = Script(lua.RANK_WINDOW)
log = logging.getLogger("geostratum.ranking")


def rank_key(name: str, figure: HashrateFigure) -> tuple[bool, float, str]:
    """Sort key of a list by hashrate (largest first with reverse=True): figures that are numbers
    before warming-up ones, then the figure, then the name."""
    return not figure.warming_up, figure.hashrate, name


class Ranking:
    """Rank windows of workers (kind "w") and accounts ("a") of every shard."""

    def __init__(self, keys: Keys, config: LedgerConfig, book: HashrateBook) -> None:
        self.keys = keys
        self.config = config
        self.book = book

    def _call(self, kind: str, tag: str, now: float, mode: list[str | int]) -> tuple[Script, list[str], list[Any]]:
        """One shard's RANK_WINDOW call (run_scripts sends the shards' calls in one pipeline)."""
        ws = self.book.window_start(RANK_WINDOW_S, now)
        base = self.keys.rank_base(tag, kind)
        keys = [self.keys.rank_window(tag, kind), self.keys.first_seen(tag, kind), self.keys.authorized(tag, kind)]
        args = [base, ws, int(now // RANK_MINUTE) * RANK_MINUTE, self.config.warming_up_shares, RANK_KEEP_S,
                RANK_MAX_LAG_S, RANK_MINUTE, *mode]
        return _RANK_WINDOW, keys, args

    async def prepare(self, client: RedisClient, kind: str, tag: str, now: float | None = None) -> int:
        """Bring one shard's rank window to now and build the next minute's beside it (lua.RANK_WINDOW
        "prepare"): readers after the minute boundary then find theirs ready. Returns the slots built
        or moved (0: both were there)."""
        now = time.time() if now is None else now
        script, keys, args = self._call(kind, tag, now, ["prepare"])
        return int(await script(client, keys, args))

    def _figure(self, ws: int, now: float, uptime: UpTimeline, d: bytes, n: bytes, first: bytes,
                authorized: bytes) -> HashrateFigure:
        """The 5-minute figure as HashrateBook reads it from the buckets (the same integers, the same
        seconds the pool was up)."""
        start, is_share = observation_start(*(float(text(v)) if text(v) else None for v in (first, authorized)))
        return hashrate_figure(RANK_WINDOW_S, ws, now, float(text(d)) / self.config.bucket_units, int(float(text(n))),
                               start, self.config.warming_up_shares, is_share, uptime)

    async def top(self, client: RedisClient, kind: str, tags: Sequence[str], limit: int,
                  now: float | None = None) -> list[tuple[str, HashrateFigure]]:
        """The `limit` first names of all `tags` by rank_key, with their 5-minute figures; names
        without a share in the window are not in it."""
        now = time.time() if now is None else now
        ws = self.book.window_start(RANK_WINDOW_S, now)
        uptime, replies = await asyncio.gather(self.book.timeline(client, now, RANK_WINDOW_S),
                                               run_scripts(client, [self._call(kind, tag, now, ["top", limit])
                                                                    for tag in tags]))
        rows = [reply[i:i + 5] for reply in replies for i in range(0, len(reply), 5)]
        found = [(text(r[0]), self._figure(ws, now, uptime, *r[1:])) for r in rows if r[3]]    # young: each its own
        # The others share the divisor, so rank_key orders them as (enough shares, difficulty, name):
        # only the first `limit` of them can be in the page, and only theirs are figured.
        min_shares = self.config.warming_up_shares
        old = [(int(float(text(r[2]))) >= min_shares, float(text(r[1])), text(r[0]), r) for r in rows if not r[3]]
        old.sort(reverse=True)
        found += [(name, self._figure(ws, now, uptime, *r[1:])) for _, _, name, r in old[:limit]]
        found.sort(key=lambda item: rank_key(*item), reverse=True)
        return found[:limit]

    async def figures_of(self, client: RedisClient, kind: str, names_by_tag: dict[str, list[str]],
                         now: float | None = None) -> dict[str, HashrateFigure]:
        """The 5-minute figures (as rank_key orders them) of these names; one without a share in the
        window gets the empty figure."""
        now = time.time() if now is None else now
        wanted = [(tag, names) for tag, names in names_by_tag.items() if names]
        uptime, replies = await asyncio.gather(self.book.timeline(client, now, RANK_WINDOW_S), run_scripts(
            client, [self._call(kind, tag, now, ["of", *names]) for tag, names in wanted]))
        ws = self.book.window_start(RANK_WINDOW_S, now)
        out = {name: empty_figure(RANK_WINDOW_S) for _, names in wanted for name in names}
        for reply in replies:
            for i in range(0, len(reply), 5):
                out[text(reply[i])] = self._figure(ws, now, uptime, *reply[i + 1:i + 5])
        return out


class RankKeeperSnapshot(msgspec.Struct, kw_only=True):
    """What the read side's rank keeper did (rendered in /metrics)."""

    passes: int = 0                 # passes over every shard and kind that ended
    built: int = 0                  # rank window slots built or moved by the keeper
    failures: int = 0               # passes cut short by a Redis error
    last_pass_at: float = 0.0       # when the last pass ended (0: none yet)
    last_pass_seconds: float = 0.0  # how long it took


class RankKeeper:
    """The read side's background task that keeps the rank windows ahead of the readers: once at
    start and then RANK_PREPARE_AT_S into every minute it brings each shard's windows (workers and
    accounts) to now and builds the next minute's (Ranking.prepare), so the first list read after a
    minute boundary does not take the minute that left out of 16 shards' sums on its own time. One
    shard at a time: each call is one short script, so the requests' reads interleave between them.
    A reader that comes first (the keeper late, Redis down) still brings the window itself, exactly."""

    def __init__(self, ranking: Ranking, client: Callable[[], RedisClient], tags: Sequence[str],
                 at_s: float = RANK_PREPARE_AT_S) -> None:
        self.ranking = ranking
        self._client = client
        self.tags = list(tags)
        self.at_s = at_s
        self._snapshot = RankKeeperSnapshot()
        self._task: asyncio.Task[None] | None = None

    def snapshot(self) -> RankKeeperSnapshot:
        return msgspec.structs.replace(self._snapshot)

    async def run_once(self, now: float | None = None) -> int:
        """One pass over every shard and kind; the slots built or moved."""
        started = time.perf_counter()
        built = 0
        try:
            for tag in self.tags:
                for kind in RANK_KINDS:
                    built += await self.ranking.prepare(self._client(), kind, tag, now)
        except Exception:
            self._snapshot.failures += 1
            raise
        finally:
            self._snapshot.built += built
        self._snapshot.passes += 1
        self._snapshot.last_pass_at = time.time()
        self._snapshot.last_pass_seconds = time.perf_counter() - started
        return built

    def next_pass_at(self, now: float) -> float:
        """RANK_PREPARE_AT_S into the minute after `now`'s pass time."""
        at = now // RANK_MINUTE * RANK_MINUTE + self.at_s
        return at if at > now else at + RANK_MINUTE

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:    # RedisError, OSError, a cluster client's internal errors
                log.debug("rank windows not prepared: %r", exc)
            await asyncio.sleep(max(0.0, self.next_pass_at(time.time()) - time.time()))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="rank-keeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
