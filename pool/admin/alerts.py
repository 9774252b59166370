"""What is worth telling someone: rules over the pool's snapshots (no I/O), and the task that feeds them.

`AlertRules` is a plain state machine: each `observe_*` takes one snapshot (the same typed views the
admin API serves) and returns the alerts it implies, remembering what it already said so a state is
announced once per change. `AlertMonitor` reads the snapshots every check_interval_seconds through
the PoolState Protocol and hands the alerts to the Notifier; it runs beside the Stratum server on the
admin process, never inside share handling.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from pool.admin.interfaces import (
    AccountSummary,
    BlockInfo,
    BlockQuery,
    HealthStatus,
    ListQuery,
    PoolState,
    WorkerSummary,
)
from pool.admin.notify import Alert, Notifier, Severity
from pool.aio import cancel_and_wait
from pool.config.alerts import AlertsConfig

log = logging.getLogger("geostratum.alerts")

WINDOW_FIELDS = {"1m": "m1", "5m": "m5", "15m": "m15", "1h": "h1", "6h": "h6", "24h": "h24"}
SEVERITY: dict[str, Severity] = {
    "worker_offline": "warning", "worker_online": "info", "hashrate_drop": "warning", "block_found": "info",
    "block_orphaned": "warning", "block_rejected": "critical", "node_down": "critical", "node_up": "info",
    "redis_down": "critical", "redis_up": "info", "geo_stale": "warning",
}
BLOCK_SCAN = 50


def _rate(value: Any) -> tuple[float, float]:
    """(value, upper 95 % bound) of a window: a figure with bounds, or a bare number (bound = value)."""
    if isinstance(value, int | float):
        return float(value), float(value)
    high = value.high if value.high is not None else value.hashrate
    return float(value.hashrate), float(high)


def _hashrate(h: float) -> str:
    units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s"]
    i = 0
    while h >= 1000 and i < len(units) - 1:
        h /= 1000
        i += 1
    return f"{h:.3g} {units[i]}"


class AlertRules:
    def __init__(self, config: AlertsConfig, pool: str = "", started_at: float | None = None) -> None:
        self.config = config
        self.pool = pool
        self.started_at = time.time() if started_at is None else started_at
        self._seen_online: set[str] = set()
        self._offline: set[str] = set()
        self._dropped: set[str] = set()
        self._blocks: dict[str, str] | None = None        # hash -> status (None until the first look)
        self._down: dict[str, bool] = {}                  # component -> down
        self._geo_alerted: str = ""                       # the day the stale database was last reported

    def _alert(self, event: str, title: str, message: str, now: float, **fields: Any) -> Alert:
        return Alert(event=event, severity=SEVERITY[event], title=title, message=message, at=now, pool=self.pool,
                     **fields)

    # -- workers: offline for N minutes, and back ----------------------------------------------
    def observe_workers(self, workers: list[WorkerSummary], now: float) -> list[Alert]:
        out = []
        limit = self.config.worker_offline_minutes * 60
        present = set()
        for w in workers:
            present.add(w.name)
            if w.connections > 0:
                self._seen_online.add(w.name)
                if w.name in self._offline:
                    self._offline.discard(w.name)
                    out.append(self._alert("worker_online", f"{w.name} is back online",
                                           f"Worker {w.name} reconnected.", now, account=w.account, worker=w.name))
                continue
            last = w.last_share_at or 0.0
            # Known to mine: seen online by this monitor, or mining shortly before it started.
            known = w.name in self._seen_online or last > self.started_at - limit
            if known and w.name not in self._offline and now - last >= limit:
                self._offline.add(w.name)
                minutes = (now - last) / 60
                out.append(self._alert(
                    "worker_offline", f"{w.name} is offline",
                    f"Worker {w.name} has no connection and no share for {minutes:.0f} min "
                    f"(threshold {self.config.worker_offline_minutes:g} min).", now,
                    account=w.account, worker=w.name, details={"last_share_at": last or None}))
        for gone in (self._seen_online | self._offline) - present:  # listed no more (a day without shares)
            self._seen_online.discard(gone)
            self._offline.discard(gone)
        return out

    # -- accounts: hashrate down by X % ---------------------------------------------------------
    def observe_accounts(self, accounts: list[AccountSummary], now: float) -> list[Alert]:
        cfg = self.config
        short_name, long_name = cfg.hashrate_drop_short_window, cfg.hashrate_drop_long_window
        keep = 1 - cfg.hashrate_drop_percent / 100
        out = []
        for a in accounts:
            short, short_high = _rate(getattr(a.hashrate, WINDOW_FIELDS[short_name]))
            long, _ = _rate(getattr(a.hashrate, WINDOW_FIELDS[long_name]))
            if long <= 0 or long < cfg.hashrate_drop_min_hashrate:
                self._dropped.discard(a.account)
                continue
            if a.account not in self._dropped and short_high < keep * long:
                self._dropped.add(a.account)
                drop = 100 * (1 - short / long)
                out.append(self._alert(
                    "hashrate_drop", f"{a.account}: hashrate down {drop:.0f} %",
                    f"Account {a.account} mines {_hashrate(short)} over {short_name} against {_hashrate(long)} "
                    f"over {long_name} (down {drop:.0f} %, threshold {cfg.hashrate_drop_percent:g} %).", now,
                    account=a.account, details={"short_window": short_name, "short_hashrate": short,
                                                "short_high": short_high, "long_window": long_name,
                                                "long_hashrate": long}))
            elif a.account in self._dropped and short >= (1 - cfg.hashrate_drop_percent / 200) * long:
                self._dropped.discard(a.account)               # recovered past half the drop: re-armed
        return out

    # -- blocks: found, orphaned, rejected by the node ------------------------------------------
    def observe_blocks(self, blocks: list[BlockInfo], now: float) -> list[Alert]:
        first = self._blocks is None
        known = self._blocks if self._blocks is not None else {}
        out = []
        for b in blocks:
            before = known.get(b.hash)
            known[b.hash] = b.status
            if first or before == b.status:
                continue                                        # the first look only learns what exists
            fields = {"account": b.account, "worker": b.worker,
                      "details": {"height": b.height, "hash": b.hash, "status": b.status, "reason": b.reason}}
            if b.status == "rejected":
                out.append(self._alert("block_rejected", f"Block {b.height} rejected by the node",
                                       f"The candidate {b.hash} found by {b.worker} was refused by the node: "
                                       f"{b.reason or 'no reason given'}.", now, **fields))
            elif b.status == "orphaned":
                out.append(self._alert("block_orphaned", f"Block {b.height} orphaned",
                                       f"Block {b.hash} found by {b.worker} is no longer in the chain.", now, **fields))
            elif before is None:
                out.append(self._alert("block_found", f"Block {b.height} found",
                                       f"{b.worker} found block {b.height} ({b.hash}), reward "
                                       f"{b.reward_sat / 1e8:.8f} BTC.", now, **fields))
        self._blocks = known
        if len(known) > 10 * BLOCK_SCAN:
            keep = {b.hash for b in blocks}
            self._blocks = {h: s for h, s in known.items() if h in keep}
        return out

    # -- components: node and Redis -------------------------------------------------------------
    def observe_health(self, health: HealthStatus, now: float) -> list[Alert]:
        out = []
        for c in health.components:
            kind = "redis" if c.name == "redis" else "node" if c.name.startswith("node") else ""
            if not kind:
                continue
            down = not c.ok
            if self._down.get(c.name, False) == down:
                continue
            self._down[c.name] = down
            if down:
                out.append(self._alert(f"{kind}_down", f"{c.name} unreachable", f"{c.name}: {c.detail or 'down'}",
                                       now, details={"component": c.name}))
            else:
                out.append(self._alert(f"{kind}_up", f"{c.name} reachable again", f"{c.name} answers again.",
                                       now, details={"component": c.name}))
        return out

    # -- geolocation database age --------------------------------------------------------------
    def observe_geo(self, database: str, build_date: str, now: float) -> list[Alert]:
        try:
            built = dt.date.fromisoformat(build_date)
        except ValueError:
            return []
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        age = (today - built).days
        if age <= self.config.geo_stale_days or self._geo_alerted == today.isoformat():
            return []
        self._geo_alerted = today.isoformat()
        return [self._alert("geo_stale", f"Geolocation database {age} days old",
                            f"{database} was built on {build_date} ({age} days ago, threshold "
                            f"{self.config.geo_stale_days:g}); run `geostratum geo update`.", now,
                            details={"database": database, "build_date": build_date, "age_days": age})]


class AlertMonitor:
    """Every check_interval_seconds: snapshots -> rules -> notifier. A failing read skips that rule."""

    def __init__(self, config: AlertsConfig, state: PoolState, notifier: Notifier, pool: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.state = state
        self.notifier = notifier
        self.rules = AlertRules(config, pool, clock())
        self.clock = clock
        self.checks = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.notifier.start()
        self._task = asyncio.create_task(self._run(), name="alert-monitor")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.notifier.stop()

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.config.check_interval_seconds)

    async def check(self) -> list[Alert]:
        """One round of every rule; the alerts offered."""
        rules, state = self.rules, self.state
        limit = self.config.max_accounts_watched
        steps = [
            ("workers", lambda: state.workers(ListQuery(limit=limit * 10)),
             lambda page, now: rules.observe_workers(page.items, now)),
            ("accounts", lambda: state.accounts(ListQuery(limit=limit)),
             lambda page, now: rules.observe_accounts(page.items, now)),
            ("blocks", lambda: state.blocks(BlockQuery(limit=BLOCK_SCAN)), rules.observe_blocks),
            ("health", state.health, rules.observe_health),
            ("geo", lambda: state.regions(60),
             lambda view, now: rules.observe_geo(view.database, view.database_build, now)),
        ]
        alerts: list[Alert] = []
        for name, read, rule in steps:
            try:
                snapshot = await read()
                alerts += rule(snapshot, self.clock())
            except Exception as exc:       # one rule's read failing must not stop the others
                log.warning("alert check %s skipped: %r", name, exc)
        for alert in alerts:
            self.notifier.offer(alert)
        self.checks += 1
        return alerts
