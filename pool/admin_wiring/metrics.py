"""MetricsSource over the real pool: share counters and timings of every process, hashrate from
the ledger's buckets and the geo rollups, ledger/journal/Redis/node health."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from pool.admin.interfaces import (
    BooksFigures,
    CountryRate,
    GeoDatabaseAge,
    MetricsSnapshot,
    NodeHealth,
    PortRate,
    ShareCount,
)
from pool.admin_wiring.health import redis_ping
from pool.admin_wiring.views import PoolViews, merge_histograms, reject_name
from pool.geo.store import pool_regions
from pool.shares.hashrate import empty_figure, scaled_bounds
from pool.stratum.resume_link import ResumeSnapshot

if TYPE_CHECKING:
    from pool.admin_wiring.parts import PoolParts
    from pool.money.service import MoneyService

log = logging.getLogger("geostratum.admin")

RATE_WINDOW = 300                   # pool, port and country hashrate gauges: 5-minute averages


class MetricsAdapter:
    def __init__(self, parts: PoolParts, views: PoolViews) -> None:
        self.parts = parts
        self.views = views
        self.book = parts.ledger.reader.hashrate

    async def snapshot(self) -> MetricsSnapshot:
        parts = self.parts
        nodes = await self.views.nodes()
        accepted = sum(n.stratum.accepted for n in nodes)
        accepted_difficulty = sum(n.stratum.accepted_difficulty for n in nodes)
        rejected: dict[str, int] = {}
        for node in nodes:
            for key, count in node.stratum.rejected().items():
                name = reject_name(key)
                rejected[name] = rejected.get(name, 0) + count
        # Rejected shares credit nothing: their difficulty sum is 0 by definition.
        shares = [ShareCount(result="accepted", reason="", count=accepted, difficulty=accepted_difficulty)]
        shares += [ShareCount(result="rejected", reason=name, count=count, difficulty=0.0)
                   for name, count in sorted(rejected.items())]

        now = time.time()
        windowed = self.views.history.window(nodes, RATE_WINDOW, now)
        connections: dict[int, int] = {}
        for node in nodes:
            for port in node.stratum.ports:
                connections[port.port] = connections.get(port.port, 0) + port.connections

        client = parts.ledger.client
        pool_hashrate = empty_figure(RATE_WINDOW)
        countries: dict[str, list[float]] = {}          # country -> [hashrate, shares]
        best = None
        try:
            best = await parts.ledger.best.pool(client)
            pool_hashrate = (await self.book.pool_windows(client, now)).m5
            if parts.rollup is not None:
                live = await pool_regions(client, self.book, parts.rollup.keys, RATE_WINDOW, now,
                                          self.book.min_shares)
                for region in live.items:
                    sums = countries.setdefault(region.country, [0.0, 0])
                    sums[0] += region.figure.hashrate
                    sums[1] += region.figure.shares
        except (RedisError, OSError) as exc:
            log.debug("metrics without Redis figures: %s", exc)
        latency, _ = await redis_ping(parts)
        ports = port_rates(pool_hashrate.hashrate, windowed.port_difficulty, connections)

        stats = parts.ledger.snapshot()
        figures = parts.jobs.figures()
        blocks = 0
        try:
            blocks = int(await client.zcard(parts.ledger.keys.blocks))
        except (RedisError, OSError):
            blocks = sum(1 for b in parts.blocks if b.accepted)
        return MetricsSnapshot(
            shares=shares, pool_hashrate=pool_hashrate, ports=ports,
            countries=[_country(c, h, int(n)) for c, (h, n) in sorted(countries.items())],
            workers=len({r.worker for r in self.views.rows(nodes)}),
            notify_fanout_seconds=merge_histograms([n.stratum.fanout for n in nodes]),
            block_to_notify_seconds=merge_histograms([n.stratum.block_to_notify for n in nodes]),
            template_age_seconds=figures.template_age,
            ledger_flush_lag_seconds=max(n.ledger.lag_s for n in nodes),
            ledger_pending_shares=sum(n.ledger.pending_shares + n.ledger.queued_shares for n in nodes),
            journal_bytes=sum(n.ledger.journal_bytes for n in nodes),
            journal_entries=sum(n.ledger.queued_batches for n in nodes),
            redis_up=latency is not None and stats.redis_up, redis_latency_seconds=latency,
            nodes=[NodeHealth(name=n.name, up=n.healthy, latency_seconds=n.latency_ms / 1000 if n.healthy else None)
                   for n in figures.nodes],
            blocks_found=blocks, chain_height=max(0, figures.height - 1),
            network_difficulty=figures.network_difficulty,
            session_resumes=_summed([_resumes(n.stratum.resume) for n in nodes]),
            best_share_difficulty=best.ever.difficulty if best and best.ever else None,
            round_best_share_difficulty=(best.round.difficulty if best.round else 0.0) if best else None,
            alerts={s.name: {"sent": s.sent, "failed": s.failed, "retried": s.retries, "rate_limited": s.rate_limited,
                             "queue_full": s.queue_full}
                    for s in parts.alerts.notifier.stats()} if parts.alerts else {},
            books=await books_figures(parts.money) if parts.money is not None else None,
            geo_databases=geo_ages(parts))


def geo_ages(parts: PoolParts) -> list[GeoDatabaseAge]:
    if parts.locator is None:
        return []
    limit = parts.config.geo.max_database_age_days * 86400.0
    now = time.time()
    return [GeoDatabaseAge(role=d.role, type=d.type, build_epoch=d.build_epoch, age_seconds=now - d.build_epoch,
                           max_age_seconds=limit) for d in parts.locator.databases]


async def books_figures(money: MoneyService) -> BooksFigures:
    snap = await money.snapshot()
    if snap is None:
        return BooksFigures(up=False)
    return BooksFigures(
        up=True, unpaid_sat=snap.unpaid_msat / 1000, unpaid_accounts=snap.accounts_with_balance,
        in_flight_sat=snap.in_flight_msat / 1000, paid_sat=snap.paid_msat / 1000, last_payout_at=snap.last_payout_at,
        last_payout_sat=snap.last_payout_sat, inconsistent_accounts=snap.inconsistent_accounts,
        total_msat=snap.total_msat)


def port_rates(pool_rate: float, port_difficulty: dict[int, float], connections: dict[int, int]) -> list[PortRate]:
    """The pool's 5-minute figure split by each port's share of the accepted difficulty the admin
    processes counted in memory over the same 5 minutes: the ports sum to the pool figure (the
    ledger keeps no per-port buckets; after a restart the split rests on the minutes seen since)."""
    total = sum(port_difficulty.get(port, 0.0) for port in connections)
    return [PortRate(port=port, connections=count,
                     hashrate=pool_rate * port_difficulty.get(port, 0.0) / total if total > 0 else 0.0)
            for port, count in sorted(connections.items())]


def _country(country: str, rate: float, shares: int) -> CountryRate:
    low, high = scaled_bounds(rate, shares)
    return CountryRate(country=country, hashrate=rate, low=low, high=high)


def _resumes(resume: ResumeSnapshot | None) -> dict[str, int]:
    return {"claimed": resume.claimed, "missed": resume.missed, "failed": resume.failed} if resume else {}


def _summed(counts: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for one in counts:
        for key, value in one.items():
            out[key] = out.get(key, 0) + value
    return out
