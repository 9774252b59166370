"""MetricsSource over the real pool: every process's snapshot (through the views), this process's
job source, geo locator, alert targets and books, and what one scrape reads from Redis (the pool's and
the countries' 5-minute hashrate, the best shares, the blocks found). pool/admin/metrics.py renders it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from pool.admin.interfaces import CountryRate, MetricsSnapshot, PortRate
from pool.admin_wiring.health import redis_ping
from pool.admin_wiring.views import PoolViews
from pool.geo.store import LiveRegion, pool_regions
from pool.shares.hashrate import scaled_bounds

if TYPE_CHECKING:
    from pool.admin.notify import TargetStats
    from pool.chain.jobs import JobManager
    from pool.chain.types import BlockResult
    from pool.geo.locator import GeoLocator
    from pool.geo.rollup import GeoRollup
    from pool.money.service import MoneyService
    from pool.shares.ledger import Ledger
    from pool.shares.ranking import RankKeeperSnapshot

log = logging.getLogger("geostratum.admin")

RATE_WINDOW = 300                   # pool, port and country hashrate gauges: 5-minute averages


class MetricsAdapter:
    def __init__(self, ledger: Ledger, jobs: JobManager, blocks: list[BlockResult], *, views: PoolViews,
                 alert_targets: Callable[[], list[TargetStats]] = list,
                 ranking: Callable[[], RankKeeperSnapshot | None] = lambda: None, money: MoneyService | None = None,
                 locator: GeoLocator | None = None, rollup: GeoRollup | None = None) -> None:
        self.ledger = ledger
        self.jobs = jobs
        self.blocks = blocks                # this process's block results (the app appends)
        self.views = views
        self.alert_targets = alert_targets  # the alert monitor's targets (it may be built after this)
        self.ranking = ranking              # the rank keeper's snapshot (started after this)
        self.money = money
        self.locator = locator
        self.rollup = rollup
        self.book = ledger.reader.hashrate

    async def snapshot(self) -> MetricsSnapshot:
        """The components' snapshots as they are, with this scrape's Redis and PostgreSQL reads."""
        nodes = await self.views.nodes()
        now = time.time()
        snap = MetricsSnapshot(
            at=now, processes=nodes, chain=self.jobs.snapshot(),
            geo=self.locator.snapshot() if self.locator is not None else None,
            alert_targets=self.alert_targets(), ranking=self.ranking(), books_configured=self.money is not None,
            books=await self.money.snapshot() if self.money is not None else None)
        snap.redis_latency_seconds, _ = await redis_ping(self.ledger)
        client = self.ledger.client
        try:
            best = await self.ledger.best.pool(client)
            snap.best_share_difficulty = best.ever.difficulty if best.ever else None
            snap.round_best_share_difficulty = best.round.difficulty if best.round else 0.0
            snap.pool_hashrate = (await self.book.pool_windows(client, now)).m5
            if self.rollup is not None:
                live = await pool_regions(client, self.book, self.rollup.keys, RATE_WINDOW, now,
                                          self.book.min_shares)
                snap.countries = country_rates(live.items)
        except (RedisError, OSError) as exc:
            log.debug("metrics without Redis figures: %s", exc)
        windowed = self.views.history.window(nodes, RATE_WINDOW, now)
        listening = sorted({p.port for node in nodes for p in node.stratum.ports})
        snap.ports = port_rates(snap.pool_hashrate.hashrate, windowed.port_difficulty, listening)
        try:
            snap.blocks_found = int(await client.zcard(self.ledger.keys.blocks))
        except (RedisError, OSError):
            snap.blocks_found = sum(1 for b in self.blocks if b.accepted)
        return snap


def port_rates(pool_rate: float, port_difficulty: dict[int, float], ports: list[int]) -> list[PortRate]:
    """The pool's 5-minute figure split by each port's share of the accepted difficulty the admin
    processes counted in memory over the same 5 minutes: the ports sum to the pool figure (the
    ledger keeps no per-port buckets; after a restart the split rests on the minutes seen since)."""
    total = sum(port_difficulty.get(port, 0.0) for port in ports)
    return [PortRate(port=port, hashrate=pool_rate * port_difficulty.get(port, 0.0) / total if total > 0 else 0.0)
            for port in ports]


def country_rates(regions: list[LiveRegion]) -> list[CountryRate]:
    """Each country's regions summed, with 95 % bounds from its share count."""
    sums: dict[str, list[float]] = {}          # country -> [hashrate, shares]
    for region in regions:
        pair = sums.setdefault(region.country, [0.0, 0])
        pair[0] += region.figure.hashrate
        pair[1] += region.figure.shares
    out = []
    for country, (rate, shares) in sorted(sums.items()):
        low, high = scaled_bounds(rate, int(shares))
        out.append(CountryRate(country=country, hashrate=rate, low=low, high=high))
    return out
