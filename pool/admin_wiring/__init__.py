"""The admin API's providers over the real pool: adapters from the stratum server, chain, ledger and
geo objects to the Protocols in pool.admin.interfaces (the admin package itself imports none of them).
The app hands over its started components as one PoolParts record (pool.parts), which only the build
functions here read: each adapter is given the components it reads. Nothing here imports the app; the
inter-process bus is pool.bus and the config reload pool.reload (handed in as a callable).

    admin = build_admin(parts, link, reload); await admin.start()   # worker 0: the admin API over every process
    alerts = build_alerts(parts, link); await alerts.start()
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pool.admin import AdminServer
from pool.admin.alerts import AlertMonitor
from pool.admin.interfaces import ReloadResult
from pool.admin.notify import Notifier
from pool.admin_wiring.alert_store import RedisAlertStore
from pool.admin_wiring.control import PoolControlAdapter
from pool.admin_wiring.exports import GeoExports
from pool.admin_wiring.health import HealthReader
from pool.admin_wiring.metrics import MetricsAdapter
from pool.admin_wiring.miner import MinerReader
from pool.admin_wiring.network import NetworkReader
from pool.admin_wiring.state import PoolStateAdapter
from pool.admin_wiring.views import PoolViews
from pool.bus import ClusterLink
from pool.parts import PoolParts

__all__ = ["build_admin", "build_alerts"]


def _state(parts: PoolParts, link: ClusterLink, views: PoolViews, network: NetworkReader) -> PoolStateAdapter:
    health = HealthReader(parts.config, parts.ledger, parts.jobs, parts.server, link, money=parts.money,
                          locator=parts.locator)
    return PoolStateAdapter(parts.config, parts.ledger, parts.jobs, parts.blocks, views=views, network=network,
                            health=health, money=parts.money, locator=parts.locator, rollup=parts.rollup)


def build_admin(parts: PoolParts, link: ClusterLink, reload: Callable[[], Awaitable[ReloadResult]]) -> AdminServer:
    """The admin server over a started pool's parts, its link to the other processes (unstarted: then
    the views cover this process only) and the config reload. Each adapter gets the parts it reads."""
    views = PoolViews(link)
    network = NetworkReader(parts.config, parts.jobs, parts.blocks)
    metrics = MetricsAdapter(parts.ledger, parts.jobs, parts.blocks, views=views, money=parts.money,
                             locator=parts.locator, rollup=parts.rollup,
                             alert_targets=lambda: parts.alerts.notifier.snapshot() if parts.alerts else [],
                             ranking=lambda: parts.rank_keeper.snapshot() if parts.rank_keeper else None)
    admin = AdminServer(parts.config.admin, _state(parts, link, views, network),
                        PoolControlAdapter(parts.server, views, reload),
                        GeoExports(parts.config, parts.ledger, parts.rollup), metrics,
                        miners=MinerReader(parts.config, parts.ledger, views, network, money=parts.money))
    parts.admin = admin
    return admin


def build_alerts(parts: PoolParts, link: ClusterLink) -> AlertMonitor:
    """The alert monitor over a started pool's parts (idle while alerts are off or have no target: a
    reload can turn them on)."""
    config = parts.config.alerts
    views = PoolViews(link)
    store = RedisAlertStore(lambda: parts.ledger.client, parts.ledger.keys.pool,
                            max_outbox=lambda: sum(t.queue_size for t in parts.config.alerts.targets))
    network = NetworkReader(parts.config, parts.jobs, parts.blocks)
    return AlertMonitor(config, _state(parts, link, views, network), Notifier(config.targets),
                        pool=parts.config.pool.name, store=store)
