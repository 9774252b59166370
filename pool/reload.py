"""Config reload without dropping miners: re-read the file, ask each running part to take its section,
apply only when every part agreed.

Each part that can change live owns its share of a reload (pool/config/changes.py says the terms):
the stratum server ([stratum]: limits, port difficulties, TLS certificates; pool/stratum/reload_plan.py),
the geo locator and rollup ([geo] except `enabled`), the admin server ([admin] except
enabled/host/port) and the alert monitor ([alerts]). `plan_reload` checks and prepares without
changing anything (ConfigError names the key), `apply_reload` cannot fail; so a refused reload changes
nothing. Any other changed key is listed under requires_restart and the running value stays in force.
This module only orchestrates, and keeps the running Config record's sections in step.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

from pool import config as config_module
from pool.admin.alerts import plan_alerts_reload
from pool.admin.interfaces import Rejected, ReloadResult
from pool.config import Config, ConfigError
from pool.config.changes import section_changes
from pool.geo.locator import plan_geo_reload

if TYPE_CHECKING:
    from pool.parts import PoolParts

log = logging.getLogger("geostratum.admin")

RESTART_SECTIONS = ("pool", "chain", "redis", "ledger", "payouts")    # read once, at start

_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


async def reload_app(parts: PoolParts) -> ReloadResult:
    """Re-read parts.config_path and apply it to this process. Never raises for a bad file."""
    if not parts.config_path:
        raise Rejected("this pool was started without a config file; nothing to reload", 409)
    lock = _locks.get(parts)
    if lock is None:
        lock = _locks[parts] = asyncio.Lock()
    async with lock:   # SIGHUP and the admin API may ask at the same time
        try:
            new = await asyncio.get_running_loop().run_in_executor(None, config_module.load, parts.config_path)
            result = _apply(parts, new)
        except ConfigError as exc:
            log.warning("config reload refused: %s", exc)
            return ReloadResult(ok=False, error=str(exc))
    log.info("config reloaded from %s: applied %s; needs a restart: %s", parts.config_path,
             ", ".join(result.applied) or "nothing", ", ".join(result.requires_restart) or "nothing")
    return result


def _apply(parts: PoolParts, new: Config) -> ReloadResult:
    running = parts.config
    # 1. Every part plans its section: ConfigError names the key, and nothing has changed yet. The
    #    locator plans last: its plan holds the new database files open, so nothing after it refuses.
    stratum = parts.server.plan_reload(new.stratum)
    admin = parts.admin.plan_reload(new.admin) if parts.admin is not None else None   # worker 0 only
    alerts = plan_alerts_reload(running.alerts, new.alerts)
    geo = parts.locator.plan_reload(new.geo) if parts.locator is not None else plan_geo_reload(running.geo, new.geo)

    # 2. Every part applies its plan (nothing below fails); the running Config's sections follow.
    parts.server.apply_reload(stratum)          # [stratum] changes in place (the sessions read it)
    if geo.applied:
        running.geo = geo.config
    for taker in (parts.locator, parts.rollup):
        if taker is not None:
            taker.apply_reload(geo)
    if parts.admin is not None and admin is not None:
        if admin.applied:
            running.admin = admin.config
        parts.admin.apply_reload(admin)
    if alerts.applied:
        running.alerts = alerts.config          # every process keeps it; the monitor runs in worker 0
    if parts.alerts is not None:
        parts.alerts.apply_reload(alerts)

    plans = [p for p in (stratum, geo, admin, alerts) if p is not None]
    restart = [key for plan in plans for key in plan.requires_restart]
    for section in RESTART_SECTIONS:
        restart += section_changes(getattr(running, section), getattr(new, section), section)
    return ReloadResult(ok=True, applied=[key for plan in plans for key in plan.applied], requires_restart=restart)
