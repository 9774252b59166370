"""The admin API's providers over the real pool: adapters from the stratum server, chain, ledger and
geo objects to the Protocols in pool.admin.interfaces (the admin package itself imports none of them).
The app hands over its started components as one PoolParts record; nothing here imports the app.

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
from pool.admin_wiring.metrics import MetricsAdapter
from pool.admin_wiring.miner import MinerReader
from pool.admin_wiring.network import NetworkReader
from pool.admin_wiring.parts import PoolParts
from pool.admin_wiring.reload import reload_app
from pool.admin_wiring.state import PoolStateAdapter
from pool.admin_wiring.views import PoolViews

__all__ = ["ClusterLink", "PoolParts", "build_admin", "build_alerts", "reload_app", "start_cluster_link"]


async def start_cluster_link(parts: PoolParts) -> ClusterLink:
    """Call once the stratum server and the ledger are started."""
    link = ClusterLink(parts)
    await link.start()
    return link


def build_admin(parts: PoolParts, link: ClusterLink | None = None) -> AdminServer:
    """The admin server over a started pool's parts and its cluster link (without one, a link made
    here unstarted: then the views cover this process only)."""
    link = link or ClusterLink(parts)
    views = PoolViews(parts, link)
    network = NetworkReader(parts)
    admin = AdminServer(parts.config.admin, PoolStateAdapter(parts, views, network),
                        PoolControlAdapter(parts, views), GeoExports(parts), MetricsAdapter(parts, views),
                        miners=MinerReader(parts, views, network))
    parts.admin = admin
    return admin


def build_alerts(parts: PoolParts, link: ClusterLink | None = None) -> AlertMonitor:
    """The alert monitor over a started pool's parts (idle while alerts are off or have no target: a
    reload can turn them on)."""
    config = parts.config.alerts
    link = link or ClusterLink(parts)
    views = PoolViews(parts, link)
    store = RedisAlertStore(lambda: parts.ledger.client, parts.ledger.keys.pool,
                            max_outbox=lambda: sum(t.queue_size for t in parts.config.alerts.targets))
    return AlertMonitor(config, PoolStateAdapter(parts, views, NetworkReader(parts)), Notifier(config.targets),
                        pool=parts.config.pool.name, store=store)
