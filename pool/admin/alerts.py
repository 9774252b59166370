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
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import msgspec

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
from pool.aio import cancel_and_wait, wait_set
from pool.config.alerts import AlertsConfig
from pool.config.changes import ReloadPlan, section_changes

log = logging.getLogger("geostratum.alerts")
T = TypeVar("T")

WINDOW_FIELDS = {"1m": "m1", "5m": "m5", "15m": "m15", "1h": "h1", "6h": "h6", "24h": "h24"}
SEVERITY: dict[str, Severity] = {
    "worker_offline": "warning", "worker_online": "info", "hashrate_drop": "warning", "block_found": "info",
    "block_orphaned": "warning", "block_rejected": "critical", "node_down": "critical", "node_up": "info",
    "redis_down": "critical", "redis_up": "info", "geo_stale": "warning",
}
BLOCK_SCAN = 50
STORE_TIMEOUT = 5.0                 # seconds one read or write of the alert state may take
StateMap = dict[str, dict[str, str]]   # kind -> field -> value (the rules' memory, as Redis hashes hold it)
Changes = dict[str, tuple[dict[str, str], list[str]]]     # kind -> (fields to set, fields to delete)


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    """An alert a target took and has not been through with yet (the store's outbox)."""

    target: str
    alert: Alert


class AlertStore(Protocol):
    """Where the monitor keeps what it already said and what it has not delivered yet (Redis), so a
    restarted pool neither repeats nor misses an alert. Outbox entries are opaque bytes to it."""

    async def claim(self, token: str, ttl_ms: int) -> bool: ...       # take or keep the one monitor's lease

    async def release(self, token: str) -> None: ...

    async def load(self) -> tuple[StateMap, list[bytes]]: ...

    async def save(self, changes: Changes, outbox: list[bytes]) -> None: ...

    async def delivered(self, entry: bytes) -> None: ...


def lease_seconds(config: AlertsConfig) -> float:
    """How long the monitor's lease outlives its last renewal (three checks, and at least 10 s)."""
    return max(10.0, 3 * config.check_interval_seconds)


def state_changes(old: StateMap, new: StateMap) -> Changes:
    out: Changes = {}
    for kind in dict.fromkeys([*old, *new]):
        before, after = old.get(kind, {}), new.get(kind, {})
        sets = {k: v for k, v in after.items() if before.get(k) != v}
        gone = [k for k in before if k not in after]
        if sets or gone:
            out[kind] = (sets, gone)
    return out


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

    # -- what was already said, as plain string maps (kept in Redis by the monitor's store) ----------
    def state(self) -> StateMap:
        meta = {"geo_alerted": self._geo_alerted} if self._geo_alerted else {}
        if self._blocks is not None:
            meta["blocks_seen"] = "1"
        return {"seen": dict.fromkeys(self._seen_online, "1"), "offline": dict.fromkeys(self._offline, "1"),
                "dropped": dict.fromkeys(self._dropped, "1"), "blocks": dict(self._blocks or {}),
                "down": {name: "1" if down else "0" for name, down in self._down.items()}, "meta": meta}

    def restore(self, stored: StateMap) -> None:
        """Take what a previous run had said. What this run has learnt of the node and Redis meanwhile
        (they are watched before the stored state could be read) stays."""
        meta = stored.get("meta", {})
        self._seen_online = set(stored.get("seen", {}))
        self._offline = set(stored.get("offline", {}))
        self._dropped = set(stored.get("dropped", {}))
        self._blocks = dict(stored.get("blocks", {})) if meta.get("blocks_seen") else None
        self._down = {**{name: v == "1" for name, v in stored.get("down", {}).items()}, **self._down}
        self._geo_alerted = max(self._geo_alerted, meta.get("geo_alerted", ""))

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


class AlertsReload(ReloadPlan, frozen=True, kw_only=True):
    """The [alerts] part of a config reload: the whole section applies live."""

    config: AlertsConfig


def plan_alerts_reload(running: AlertsConfig, new: AlertsConfig) -> AlertsReload:
    """The changed keys of [alerts] (checked when the file was read: nothing here can refuse)."""
    return AlertsReload(applied=tuple(section_changes(running, new, "alerts")), config=new)


class AlertMonitor:
    """Every check_interval_seconds: snapshots -> rules -> notifier. A failing read skips that rule.

    With a store, what the rules remember and every alert a target took but has not been through with
    are saved before the alert is queued: a restart reads both back, so it repeats no transition, misses
    none, and sends what the last run had not (an alert cut off mid-send may arrive twice).
    """

    def __init__(self, config: AlertsConfig, state: PoolState, notifier: Notifier, pool: str = "",
                 clock: Callable[[], float] = time.time, store: AlertStore | None = None) -> None:
        self.config = config
        self.state = state
        self.notifier = notifier
        self.rules = AlertRules(config, pool, clock())
        self.clock = clock
        self.store = store
        self.checks = 0
        self.restored = store is None          # the stored state has been read (or there is none to read)
        self.leader = store is None            # holds the store's lease: the pool's one monitor
        self._token = uuid.uuid4().hex
        self._saved: StateMap = {}             # what the store holds
        self._entries: dict[tuple[str, int], bytes] = {}    # (target, id(alert)) -> its outbox entry
        self._task: asyncio.Task[None] | None = None
        self._checking = asyncio.Lock()
        self._wake = asyncio.Event()
        if store is not None:
            notifier.on_done = self._delivered

    async def start(self) -> None:
        await self.notifier.start()
        self._task = asyncio.create_task(self._run(), name="alert-monitor")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self.store is not None and self.leader:
            try:
                async with asyncio.timeout(STORE_TIMEOUT):
                    await self.store.release(self._token)      # the next monitor need not wait it out
            except Exception as exc:
                log.warning("alert monitor lease not released: %r", exc)
            self.leader = False
        await self.notifier.stop()

    async def _lead(self) -> bool:
        """Whether this monitor is the pool's one (every host's first worker runs one; the others stand
        by and take over when the lease lapses, lease_seconds after its holder stopped renewing).
        While Redis does not answer nobody can tell: each runs the rules that need no Redis (the node,
        Redis itself, the geolocation database), so an outage is never told by nobody."""
        assert self.store is not None
        ttl = lease_seconds(self.config)
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                held = await self.store.claim(self._token, int(ttl * 1000))
        except Exception as exc:
            log.debug("alert monitor lease not renewed: %r", exc)
            return True
        if held != self.leader:
            log.info("alerts: this process %s the pool's alert monitor", "is now" if held else "is no longer")
            if not held:
                self.restored = False      # another monitor moves the stored state on: read it again
        self.leader = held
        return held

    async def _run(self) -> None:
        while True:
            if self.config.enabled and self.config.targets:   # off, or nobody to tell: idle (a reload may
                await self.check()                            # turn it on)
            self._wake.clear()
            await wait_set(self._wake, self.config.check_interval_seconds)

    def plan_reload(self, new: AlertsConfig) -> AlertsReload:
        return plan_alerts_reload(self.config, new)

    def apply_reload(self, plan: AlertsReload) -> None:
        """Put a plan from plan_reload in force (cannot fail), as apply_config."""
        if plan.applied:
            self.apply_config(plan.config)

    def apply_config(self, config: AlertsConfig) -> None:
        """A config reload (SIGHUP, POST /api/v1/reload): thresholds, windows and the interval from the
        next check on (which comes at once), targets as Notifier.reconfigure says. What the rules
        remember stays."""
        self.config = self.rules.config = config
        self.notifier.reconfigure(config.targets)
        names = {t.name for t in config.targets}
        # A removed target's undelivered entries stay in the outbox; the next start drops them.
        self._entries = {key: entry for key, entry in self._entries.items() if key[0] in names}
        self._wake.set()

    async def _restore(self) -> None:
        assert self.store is not None
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                stored, outbox = await self.store.load()
        except Exception as exc:       # Redis down: only the node and Redis rules run until it answers
            log.warning("alert state not read yet: %r", exc)
            return
        self.rules.restore(stored)
        self._saved = stored
        self.restored = True
        decoder = msgspec.json.Decoder(Outgoing)
        mine = set(self._entries.values())         # queued here already (a monitor that led before)
        for entry in outbox:
            if entry in mine:
                continue
            try:
                item = decoder.decode(entry)
            except msgspec.DecodeError:
                item = None
            if item is not None and self.notifier.put(item.target, item.alert):
                self._entries[(item.target, id(item.alert))] = entry
            else:                      # unreadable, a target no longer configured, or a full queue
                await self._forget(entry)
        if outbox:
            log.info("alerts: %d undelivered alert(s) of the last run queued again", len(outbox))

    async def _delivered(self, target: str, alert: Alert) -> None:
        entry = self._entries.pop((target, id(alert)), None)
        if entry is not None:
            await self._forget(entry)

    async def _forget(self, entry: bytes) -> None:
        assert self.store is not None
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                await self.store.delivered(entry)
        except Exception as exc:       # left in the outbox: the next start sends it again
            log.warning("alert outbox entry not removed: %r", exc)

    async def check(self) -> list[Alert]:
        """One round of every rule; the alerts offered. The Redis-backed rules wait while Redis is down
        (the views would answer from this process alone) or the stored state is not read yet."""
        async with self._checking:          # one at a time (the loop's and a caller's)
            return await self._check()

    async def _check(self) -> list[Alert]:
        if self.store is not None and not await self._lead():
            return []
        if not self.restored:
            await self._restore()
        rules, state = self.rules, self.state
        limit = self.config.max_accounts_watched
        alerts: list[Alert] = []
        health = await self._read("health", state.health)
        if health is not None:
            alerts += rules.observe_health(health, self.clock())
        if self.restored and health is not None and all(c.ok for c in health.components if c.name == "redis"):
            workers = await self._read("workers", lambda: state.workers(ListQuery(limit=limit * 10)))
            if workers is not None:
                alerts += rules.observe_workers(workers.items, self.clock())
            accounts = await self._read("accounts", lambda: state.accounts(ListQuery(limit=limit)))
            if accounts is not None:
                alerts += rules.observe_accounts(accounts.items, self.clock())
            blocks = await self._read("blocks", lambda: state.blocks(BlockQuery(limit=BLOCK_SCAN)))
            if blocks is not None:
                alerts += rules.observe_blocks(blocks, self.clock())
        regions = await self._read("geo", lambda: state.regions(60))
        if regions is not None:
            alerts += rules.observe_geo(regions.database, regions.database_build, self.clock())
        await self._send(alerts)
        self.checks += 1
        return alerts

    async def _read(self, name: str, read: Callable[[], Awaitable[T]]) -> T | None:
        try:
            return await read()
        except Exception as exc:       # one rule's read failing must not stop the others
            log.warning("alert check %s skipped: %r", name, exc)
            return None

    async def _send(self, alerts: list[Alert]) -> None:
        """Admit, save (the rules' changes and the admitted alerts, one write), then queue."""
        outgoing = [Outgoing(target=name, alert=alert) for alert in alerts for name in self.notifier.admit(alert)]
        entries = [msgspec.json.encode(item) for item in outgoing]
        if self.store is not None and self.restored:
            current = self.rules.state()
            changes = state_changes(self._saved, current)
            if changes or entries:
                try:
                    async with asyncio.timeout(STORE_TIMEOUT):
                        await self.store.save(changes, entries)
                    self._saved = current
                    self._entries.update({(item.target, id(item.alert)): entry
                                          for item, entry in zip(outgoing, entries, strict=True)})
                except Exception as exc:   # sent all the same; saved with the next check's changes
                    log.warning("alert state not saved: %r", exc)
        for item in outgoing:
            if not self.notifier.put(item.target, item.alert):
                entry = self._entries.pop((item.target, id(item.alert)), None)
                if entry is not None:
                    await self._forget(entry)
