"""The admin API's providers over the real pool: adapters from the stratum server, chain, ledger and
geo objects to the Protocols in pool.admin.interfaces (the admin package itself imports none of them).

    link = ClusterLink(app); await link.start()     # every process: snapshots + control listener
    admin = build_admin(app); await admin.start()   # worker 0: the admin API over every process
    await reload_app(app)                           # SIGHUP: re-read the config file, apply it here
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pool.admin import AdminServer
from pool.admin.alerts import AlertMonitor
from pool.admin.notify import Notifier
from pool.admin_wiring.cluster import ClusterLink
from pool.admin_wiring.control import PoolControlAdapter
from pool.admin_wiring.exports import GeoExports
from pool.admin_wiring.local import install_timings
from pool.admin_wiring.metrics import MetricsAdapter
from pool.admin_wiring.miner import MinerReader
from pool.admin_wiring.network import NetworkReader
from pool.admin_wiring.reload import reload_app
from pool.admin_wiring.state import PoolStateAdapter
from pool.admin_wiring.views import PoolViews

if TYPE_CHECKING:
    from pool.app import PoolApp

__all__ = ["ClusterLink", "build_admin", "build_alerts", "reload_app", "start_cluster_link"]


async def start_cluster_link(app: PoolApp) -> ClusterLink:
    """Call once the stratum server and the ledger are started."""
    install_timings(app)
    link = ClusterLink(app)
    await link.start()
    return link


def build_admin(app: PoolApp) -> AdminServer:
    """The admin server over a started PoolApp (its `cluster` link, or one made here unstarted:
    then the views cover this process only)."""
    if app.server is None or app.ledger is None or app.jobs is None:
        raise RuntimeError("build_admin needs a started PoolApp (server, ledger and chain)")
    link = getattr(app, "cluster", None) or ClusterLink(app)
    views = PoolViews(app, link)
    network = NetworkReader(app)
    return AdminServer(app.config.admin, PoolStateAdapter(app, views, network),
                       PoolControlAdapter(app, views), GeoExports(app), MetricsAdapter(app, views),
                       miners=MinerReader(app, views, network))


def build_alerts(app: PoolApp) -> AlertMonitor | None:
    """The alert monitor over a started PoolApp, or None when alerts are off or have no target."""
    config = app.config.alerts
    if not config.enabled or not config.targets:
        return None
    link = getattr(app, "cluster", None) or ClusterLink(app)
    views = PoolViews(app, link)
    return AlertMonitor(config, PoolStateAdapter(app, views, NetworkReader(app)), Notifier(config.targets),
                        pool=app.config.pool.name)
