"""Component health: Redis, the ledger's flush lag and journal, the nodes, the block template, the
stratum listeners, the geo database and the other worker processes."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from pool.admin.interfaces import ComponentHealth, HealthStatus
from pool.bus.link import ClusterLink
from pool.chain.jobs import JobManager
from pool.config import Config
from pool.geo.locator import GeoLocator
from pool.shares.ledger import Ledger
from pool.stratum.server import StratumServer

if TYPE_CHECKING:
    from pool.money.service import MoneyService

PING_TIMEOUT = 1.0


async def redis_ping(ledger: Ledger) -> tuple[float | None, str]:
    """(round trip seconds, '') or (None, why)."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PING_TIMEOUT):
            await ledger.client.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        return None, f"not answering: {type(exc).__name__}"
    return time.perf_counter() - started, ""


def template_health(config: Config, jobs: JobManager) -> ComponentHealth:
    figures = jobs.snapshot()
    limit = max(config.admin.health_template_age_seconds, 3 * config.chain.template_refresh_interval)
    if not figures.ready:
        return ComponentHealth(name="template", ok=False, detail="no block template yet")
    return ComponentHealth(name="template", ok=figures.template_age < limit,
                           detail=f"height {figures.height}, {figures.template_age:.1f} s old (limit {limit:g} s)")


async def books_health(money: MoneyService) -> ComponentHealth:
    """The payout books: reachable, and every balance the sum of its journal entries."""
    snap = await money.snapshot()
    if snap is None:
        return ComponentHealth(name="books", ok=False, detail=f"not answering: {money.last_error[:120]}")
    if not snap.consistent:
        return ComponentHealth(name="books", ok=False,
                               detail=f"inconsistent: {snap.inconsistent_accounts} accounts differ from their "
                                      f"entries, balances add up to {snap.total_msat} msat")
    moving = money.per_share.last_error if money.per_share is not None else ""
    return ComponentHealth(name="books", ok=not moving,
                           detail=f"{snap.accounts_with_balance} accounts owed {snap.unpaid_msat // 1000} sat, "
                                  f"{snap.journal_transactions} journal transactions, consistent"
                                  + (f"; per-share credits waiting: {moving[:120]}" if moving else ""))


class HealthReader:
    """The health of this process's components and of the other processes (their snapshots)."""

    def __init__(self, config: Config, ledger: Ledger, jobs: JobManager, server: StratumServer, link: ClusterLink,
                 money: MoneyService | None = None, locator: GeoLocator | None = None) -> None:
        self.config = config
        self.ledger = ledger
        self.jobs = jobs
        self.server = server
        self.link = link
        self.money = money
        self.locator = locator

    async def status(self) -> HealthStatus:
        config = self.config
        components = []
        latency, why = await redis_ping(self.ledger)
        components.append(ComponentHealth(name="redis", ok=latency is not None,
                                          detail=why or f"{latency * 1000:.1f} ms round trip"))
        stats = self.ledger.snapshot()
        components.append(ComponentHealth(
            name="ledger", ok=stats.lag_s < config.admin.health_flush_lag_seconds,
            detail=f"flush lag {stats.lag_s:.2f} s, {stats.pending_shares + stats.queued_shares} shares waiting"
                   + (f"; last error: {stats.last_error[:120]}" if stats.last_error and not stats.redis_up else "")))
        max_batches = self.ledger.config.max_batches_in_memory
        components.append(ComponentHealth(
            name="journal", ok=stats.queued_batches < max_batches,
            detail=f"{stats.journal_bytes} bytes, {stats.queued_batches} batches not yet in Redis"))
        for node in self.jobs.snapshot().nodes:
            detail = f"{node.latency_ms:.1f} ms" if node.healthy else f"failing: {node.last_error[:120]}"
            components.append(ComponentHealth(name=f"node:{node.name}", ok=node.healthy, detail=detail))
        components.append(template_health(config, self.jobs))
        listening = self.server.ports
        components.append(ComponentHealth(name="stratum", ok=bool(listening),
                                          detail=", ".join(f"{h}:{p}" for h, p in listening)))
        if self.money is not None:
            components.append(await books_health(self.money))
        if self.locator is not None:
            dbs = ", ".join(f"{d.type} {d.build_date}" for d in self.locator.databases)
            components.append(ComponentHealth(name="geo", ok=bool(self.locator.databases), detail=dbs))
        now = time.time()
        for peer in await self.link.peers():
            age = now - peer.at
            components.append(ComponentHealth(
                name=f"worker:{peer.node}", ok=age < config.admin.snapshot_ttl_seconds and peer.ledger.redis_up,
                detail=f"{peer.stratum.connections} connections, snapshot {age:.1f} s old, ledger lag "
                       f"{peer.ledger.lag_s:.2f} s"))
        if self.link.last_error:
            components.append(ComponentHealth(name="cluster", ok=False, detail=self.link.last_error[:200]))
        return HealthStatus(ok=all(c.ok for c in components), components=components)
