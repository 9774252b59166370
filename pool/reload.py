"""Config reload without dropping miners: re-read the file, validate, apply what can change live.

Applied live: [stratum.limits] (every connection at once), the per-port start/min/max difficulty
(new connections; live ones at their next retarget), the [admin] section except host/port/enabled,
the [geo] section except `enabled` (database files are swapped by GeoLocator.reload), the [alerts]
section (AlertMonitor.apply_config). Any other changed key is listed under requires_restart and the
running value stays in force.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

import msgspec

from pool import config as config_module
from pool.admin.interfaces import Rejected, ReloadResult
from pool.config import Config, ConfigError

if TYPE_CHECKING:
    from pool.parts import PoolParts

log = logging.getLogger("geostratum.admin")

PORT_DIFFICULTY_FIELDS = ("start_difficulty", "min_difficulty", "max_difficulty")
ADMIN_RESTART_FIELDS = ("enabled", "host", "port")
GEO_LOCATOR_FIELDS = ("city_db", "update_dir", "asn_db", "anonymous_db", "hosting_asns", "builtin_hosting_asns",
                      "cache_size", "attribution")

_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def changed_keys(old: Any, new: Any, prefix: str) -> list[str]:
    """Dotted keys whose values differ (lists of tables compared item by item when equally long)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in dict.fromkeys([*old, *new]):
            out += changed_keys(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
        return out
    if (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
            and all(isinstance(x, dict) for x in old + new)):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += changed_keys(a, b, f"{prefix}[{i}]")
        return out
    return [] if old == new else [prefix]


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value)


def _port_plan(parts: PoolParts, new: Config) -> tuple[list[tuple[int, dict[str, float]]], list[str]]:
    """Per running port, the difficulty fields to set; and port keys that need a restart."""
    running = parts.config.stratum.ports
    if len(running) != len(new.stratum.ports):
        return [], ["stratum.ports"]
    plan, restart = [], []
    for i, (old, fresh) in enumerate(zip(running, new.stratum.ports, strict=True)):
        a, b = _plain(old), _plain(fresh)
        if b["port"] == 0:                        # ephemeral in the file: the port the OS gave us
            b["port"] = a["port"]
        changes = {}
        for key in changed_keys(a, b, ""):
            if key in PORT_DIFFICULTY_FIELDS:
                changes[key] = b[key]
            else:
                restart.append(f"stratum.ports[{i}].{key}")
        if changes:
            plan.append((old.port, changes))
    return plan, restart


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
        except ConfigError as exc:
            log.warning("config reload refused: %s", exc)
            return ReloadResult(ok=False, error=str(exc))
        try:
            return _apply(parts, new)
        except ConfigError as exc:
            log.warning("config reload refused: %s", exc)
            return ReloadResult(ok=False, error=str(exc))


def _apply(parts: PoolParts, new: Config) -> ReloadResult:
    old = parts.config
    applied: list[str] = []
    restart: list[str] = []

    # Everything that can fail is tried first, so a refused reload changes nothing.
    geo_changes = changed_keys(_plain(old.geo), _plain(new.geo), "geo")
    if "geo.enabled" in geo_changes:
        restart.append("geo.enabled")
        geo_changes.remove("geo.enabled")
    locator_changes = [k for k in geo_changes if k.split(".")[1].split("[")[0] in GEO_LOCATOR_FIELDS]
    if locator_changes and parts.locator is not None:
        parts.locator.reload(new.geo)               # ConfigError names the bad database key
    port_plan, port_restart = _port_plan(parts, new)
    server = parts.server
    if server is not None:
        for port, changes in port_plan:
            probe = next(p for p in old.stratum.ports if p.port == port)
            low = changes.get("min_difficulty", probe.min_difficulty)
            start = changes.get("start_difficulty", probe.start_difficulty)
            high = changes.get("max_difficulty", probe.max_difficulty)
            if not 0 < low <= start <= high:
                raise ConfigError(f"stratum.ports[{old.stratum.ports.index(probe)}].start_difficulty",
                                  f"need 0 < min <= start <= max, got {low} / {start} / {high}")

    # TLS ports re-read their certificate and key (a renewed certificate needs no restart).
    if server is not None:
        reloaded = server.reload_tls()
        applied += [f"stratum.ports[{i}].tls_cert_file" for i, p in enumerate(server.config.ports)
                    if p.port in reloaded]

    # geo: the rest of the section (retention, privacy rules, exports) is read where it is used.
    if geo_changes:
        enabled = old.geo.enabled
        parts.config.geo = msgspec.structs.replace(new.geo, enabled=enabled)
        if parts.rollup is not None:
            parts.rollup.config = parts.config.geo
        if parts.locator is not None:
            parts.locator.config = parts.config.geo     # max_database_age_days: the staleness it reports
        applied += geo_changes

    # stratum: limits at once, port difficulties for new connections; the rest needs a restart.
    stratum_changes = changed_keys(_plain(old.stratum), _plain(new.stratum), "stratum")
    limit_changes = [k for k in stratum_changes if k.startswith("stratum.limits.")]
    if server is not None:
        if limit_changes:
            server.reload_limits(new.stratum.limits)
            applied += limit_changes
        for port, changes in port_plan:
            server.set_port_difficulty(port, start=changes.get("start_difficulty"),
                                       minimum=changes.get("min_difficulty"), maximum=changes.get("max_difficulty"))
            index = next(i for i, p in enumerate(old.stratum.ports) if p.port == port)
            applied += [f"stratum.ports[{index}].{key}" for key in changes]
    restart += port_restart
    restart += [k for k in stratum_changes if not k.startswith(("stratum.limits.", "stratum.ports"))]

    # admin: only in the process that serves it.
    if parts.admin is not None:
        admin_changes = changed_keys(_plain(old.admin), _plain(new.admin), "admin")
        live = [k for k in admin_changes if k.split(".")[1] not in ADMIN_RESTART_FIELDS]
        restart += [k for k in admin_changes if k not in live]
        if live:
            kept = {f: getattr(old.admin, f) for f in ADMIN_RESTART_FIELDS}
            parts.config.admin = msgspec.structs.replace(new.admin, **kept)
            parts.admin.apply_config(parts.config.admin)
            applied += live

    # alerts: the whole section, in the process that runs the monitor (elsewhere nothing reads it).
    alert_changes = changed_keys(_plain(old.alerts), _plain(new.alerts), "alerts")
    if alert_changes:
        parts.config.alerts = new.alerts
        if parts.alerts is not None:
            parts.alerts.apply_config(new.alerts)
        applied += alert_changes

    for section in ("pool", "chain", "redis", "ledger", "payouts"):
        restart += changed_keys(_plain(getattr(old, section)), _plain(getattr(new, section)), section)
    log.info("config reloaded from %s: applied %s; needs a restart: %s", parts.config_path,
             ", ".join(applied) or "nothing", ", ".join(restart) or "nothing")
    return ReloadResult(ok=True, applied=applied, requires_restart=restart)
