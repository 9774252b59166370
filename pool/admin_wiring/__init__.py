"""The admin API's providers over the real pool: adapters from the stratum server, chain, ledger and
geo objects to the Protocols in pool.admin.interfaces (the admin package itself imports none of them).
The app hands over its started components as one PoolParts record, which only the build functions
here read: each adapter is given the components it reads. Nothing here imports the app.

    link = await start_cluster_link(parts)           # every process: snapshots + control listener
    admin = build_admin(parts, link); await admin.start()   # worker 0: the admin API over every process
    await reload_app(parts)                          # SIGHUP: re-read the config file, apply it here
"""

from __future__ import annotations

from pool.admin import AdminServer
from pool.admin.alerts import AlertMonitor
from pool.admin.notify import Notifier
from pool.admin_wiring.alert_store import RedisAlertStore
from pool.admin_wiring.cluster import ClusterLink
from pool.admin_wiring.control import PoolControlAdapter
from pool.admin_wiring.exports import GeoExports
from pool.admin_wiring.health import HealthReader
from pool.admin_wiring.local import Identity, LocalActions
from pool.admin_wiring.metrics import MetricsAdapter
from pool.admin_wiring.miner import MinerReader
from pool.admin_wiring.network import NetworkReader
from pool.admin_wiring.parts import PoolParts
from pool.admin_wiring.reload import reload_app
from pool.admin_wiring.state import PoolStateAdapter
from pool.admin_wiring.views import PoolViews

__all__ = ["ClusterLink", "PoolParts", "build_admin", "build_alerts", "reload_app", "start_cluster_link"]


def cluster_link(parts: PoolParts) -> ClusterLink:
    """This process's link to the others (not started: `start_cluster_link` starts one)."""
    me = Identity(node=parts.node, worker_index=parts.worker_index, started_at=parts.started_at)
    actions = LocalActions(parts.node, parts.server, lambda: reload_app(parts))
    return ClusterLink(parts.config, me, parts.server, parts.ledger, actions)


async def start_cluster_link(parts: PoolParts) -> ClusterLink:
    """Call once the stratum server and the ledger are started."""
    link = cluster_link(parts)
    await link.start()
    return link


def _state(parts: PoolParts, link: ClusterLink, views: PoolViews, network: NetworkReader) -> PoolStateAdapter:
    health = HealthReader(parts.config, parts.ledger, parts.jobs, parts.server, link, money=parts.money,
                          locator=parts.locator)
    return PoolStateAdapter(parts.config, parts.ledger, parts.jobs, parts.blocks, views=views, network=network,
                            health=health, money=parts.money, locator=parts.locator, rollup=parts.rollup)


def build_admin(parts: PoolParts, link: ClusterLink | None = None) -> AdminServer:
    """The admin server over a started pool's parts and its cluster link (without one, a link made
    here unstarted: then the views cover this process only). Each adapter gets the parts it reads."""
    link = link or cluster_link(parts)
    views = PoolViews(link)
    network = NetworkReader(parts.config, parts.jobs, parts.blocks)
    metrics = MetricsAdapter(parts.ledger, parts.jobs, parts.blocks, views=views, money=parts.money,
                             locator=parts.locator, rollup=parts.rollup,
                             alert_targets=lambda: parts.alerts.notifier.snapshot() if parts.alerts else [])
    admin = AdminServer(parts.config.admin, _state(parts, link, views, network),
                        PoolControlAdapter(parts.server, views, lambda: reload_app(parts)),
                        GeoExports(parts.config, parts.ledger, parts.rollup), metrics,
                        miners=MinerReader(parts.config, parts.ledger, views, network, money=parts.money))
    parts.admin = admin
    return admin


def build_alerts(parts: PoolParts, link: ClusterLink | None = None) -> AlertMonitor:
    """The alert monitor over a started pool's parts (idle while alerts are off or have no target: a
    reload can turn them on)."""
    config = parts.config.alerts
    link = link or cluster_link(parts)
    views = PoolViews(link)
    store = RedisAlertStore(lambda: parts.ledger.client, parts.ledger.keys.pool,
                            max_outbox=lambda: sum(t.queue_size for t in parts.config.alerts.targets))
    network = NetworkReader(parts.config, parts.jobs, parts.blocks)
    return AlertMonitor(config, _state(parts, link, views, network), Notifier(config.targets),
                        pool=parts.config.pool.name, store=store)
