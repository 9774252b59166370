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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

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
from pool.shares.redis_conn import RedisClient, Script, text
from pool.shares.uptime import UpTimeline

RANK_WINDOW_S = WINDOWS["5m"]       # lists sorted by hashrate rank by the 5-minute figure
RANK_MINUTE = 60                    # the ledger's rank sets hold a minute each
RANK_KEEP_S = 900                   # a minute's sets live this long after it; an unread window as long
RANK_MAX_LAG_S = 600                # a window further behind is rebuilt, not moved (its minutes may be gone)
_RANK_WINDOW = Script(lua.RANK_WINDOW)


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

    async def _call(self, client: RedisClient, kind: str, tag: str, now: float, mode: list[str | int]) -> list[bytes]:
        ws = self.book.window_start(RANK_WINDOW_S, now)
        base = self.keys.rank_base(tag, kind)
        keys = [self.keys.rank_window(tag, kind), self.keys.first_seen(tag, kind), self.keys.authorized(tag, kind)]
        args = [base, ws, int(now // RANK_MINUTE) * RANK_MINUTE, self.config.warming_up_shares, RANK_KEEP_S,
                RANK_MAX_LAG_S, RANK_MINUTE, *mode]
        return await _RANK_WINDOW(client, keys, args)

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
        uptime, *replies = await asyncio.gather(self.book.timeline(client, now, RANK_WINDOW_S),
                                                *(self._call(client, kind, tag, now, ["top", limit]) for tag in tags))
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
        uptime, *replies = await asyncio.gather(self.book.timeline(client, now, RANK_WINDOW_S), *(
            self._call(client, kind, tag, now, ["of", *names]) for tag, names in wanted))
        ws = self.book.window_start(RANK_WINDOW_S, now)
        out = {name: empty_figure(RANK_WINDOW_S) for _, names in wanted for name in names}
        for reply in replies:
            for i in range(0, len(reply), 5):
                out[text(reply[i])] = self._figure(ws, now, uptime, *reply[i + 1:i + 5])
        return out
