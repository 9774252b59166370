"""The started components of one pool process, as the admin adapters (pool.admin_wiring) and the
config reload (pool.reload) read them.

PoolApp builds every part and hands this record over; nothing that reads it imports the app, so the
adapters and the reload stand one step below it (each reads the parts it needs from this record).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pool.chain.jobs import JobManager
from pool.chain.types import BlockResult
from pool.config import Config
from pool.geo.locator import GeoLocator
from pool.geo.rollup import GeoRollup
from pool.shares.ledger import Ledger
from pool.shares.ranking import RankKeeper
from pool.stratum.server import StratumServer

if TYPE_CHECKING:
    from pool.admin import AdminServer
    from pool.admin.alerts import AlertMonitor
    from pool.money.service import MoneyService


@dataclass(eq=False)            # compared and hashed by identity (reload keeps a lock per process)
class PoolParts:
    config: Config              # the config in force: a reload replaces its sections in place
    node: str                   # this process's name (Redis keys, snapshots, logs)
    worker_index: int
    started_at: float
    server: StratumServer
    ledger: Ledger
    jobs: JobManager
    locator: GeoLocator | None = None
    rollup: GeoRollup | None = None
    # Outcomes of this process's block candidates, newest last (the app appends; shared, not copied).
    blocks: list[BlockResult] = field(default_factory=list)
    config_path: str | None = None
    money: MoneyService | None = None   # the payout books (PostgreSQL) when money.dsn is set
    admin: AdminServer | None = None    # set once the admin server is built (worker 0 only)
    alerts: AlertMonitor | None = None  # set once the alert monitor is built (worker 0, targets configured)
    rank_keeper: RankKeeper | None = None  # the read side's rank windows kept ahead (with the admin API)
