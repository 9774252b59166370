"""A small in-memory pool implementing the admin Protocols over real ShareRecords.

Every figure is computed from the recorded shares the way the real pool defines it, so tests can
check the API's numbers by hand: hashrate = sum(difficulty) x 2^32 / window.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec

import pool.config
from pool.admin.interfaces import (
    DBIP_ATTRIBUTION,
    AccountDetail,
    AccountPage,
    AccountSummary,
    BanEntry,
    BanRequest,
    BlockInfo,
    BlockQuery,
    ComponentHealth,
    ConnectionInfo,
    CountryRate,
    ExportKind,
    HashrateHistory,
    HashratePoint,
    HashrateWindows,
    HealthStatus,
    ListQuery,
    MetricsSnapshot,
    NetworkInfo,
    PoolFigures,
    PortDifficulty,
    PortDifficultyUpdate,
    PortRate,
    ReconnectRequest,
    RegionRate,
    RegionsView,
    Rejected,
    ReloadResult,
    ShareStats,
    WorkerDetail,
    WorkerPage,
    WorkerSummary,
)
from pool.chain.rpc import NodeHealth
from pool.cluster.snapshot import ConnRow
from pool.config import ConfigError
from pool.geo.mapview import MapRegion, MapView
from pool.geo.report import Folding, Privacy
from pool.shares.hashrate import hashrate_figure
from pool.stratum.events import ShareRecord
from pool.stratum.stats import LatencyHistogram
from tests.support import snapshots

T = TypeVar("T")
DIFF1 = 2**32
WINDOW_SECONDS = {"m1": 60, "m5": 300, "m15": 900, "h1": 3600, "h6": 21_600, "h24": 86_400}
COUNTRY_NAMES = {"US": "United States", "CA": "Canada", "DE": "Germany", "KZ": "Kazakhstan", "ZZ": "Unknown"}


class Reject(msgspec.Struct, frozen=True):
    timestamp: float
    worker: str
    reason: str
    difficulty: float


class InMemoryPool:
    """PoolState, PoolControl, ExportProvider and MetricsSource in one object."""

    def __init__(self, clock: Callable[[], float] = time.time, config_path: Path | None = None) -> None:
        self.clock = clock
        self.started_at = clock() - 2 * 86_400
        self.round_opened_at = clock() - 1800
        self.shares: list[ShareRecord] = []
        self.down: list[tuple[float, float]] = []   # spans the pool was not running (histories)
        self.rejects: list[Reject] = []
        self.connections: dict[str, list[ConnectionInfo]] = defaultdict(list)
        self.blocks_found: list[BlockInfo] = []
        self.network_info = NetworkInfo(chain="main", height=0, difficulty=1.0, tip_time=int(clock()))
        self.bans_by_target: dict[str, BanEntry] = {}
        self.ports = {3333: PortDifficulty(port=3333, start_difficulty=16384, min_difficulty=1024,
                                           max_difficulty=1e12)}
        self.components = [ComponentHealth(name="redis", ok=True), ComponentHealth(name="node:local", ok=True)]
        self.config_path = config_path
        self.reloads = 0
        self.kicked: list[tuple[str, str]] = []
        self.reconnected: list[tuple[str, ReconnectRequest]] = []
        self.fanout = LatencyHistogram()
        self.block_to_notify = LatencyHistogram()
        self.delay = 0.0                # seconds each call waits (to test timeouts)
        self.calls = Counter[str]()

    # -- feeding -----------------------------------------------------------------------------

    def connect(self, worker: str, *, port: int = 3333, address: str = "198.51.100.7", country: str = "ZZ",
                subdivision: str = "", difficulty: float = 16384, user_agent: str = "bmminer/2.0.0") -> None:
        self.connections[worker].append(ConnectionInfo(
            port=port, address=address, connected_at=self.clock() - 3600, difficulty=difficulty,
            user_agent=user_agent, country=country, subdivision=subdivision))

    def add_share(self, share: ShareRecord) -> None:
        self.shares.append(share)

    def reject(self, worker: str, reason: str, difficulty: float, timestamp: float) -> None:
        self.rejects.append(Reject(timestamp, worker, reason, difficulty))

    async def _enter(self, name: str) -> None:
        self.calls[name] += 1
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)

    # -- figures -----------------------------------------------------------------------------

    def _windows(self, shares: list[ShareRecord]) -> HashrateWindows:
        """Each window over its full length (this pool has run for days), with its share count."""
        now = self.clock()
        sums = {key: [0.0, 0] for key in WINDOW_SECONDS}
        for share in shares:
            age = now - share.timestamp
            for key, seconds in WINDOW_SECONDS.items():
                if 0 <= age < seconds:
                    sums[key][0] += share.difficulty
                    sums[key][1] += 1
        return HashrateWindows(**{k: hashrate_figure(seconds, now - seconds, now, sums[k][0], int(sums[k][1]))
                                  for k, seconds in WINDOW_SECONDS.items()})

    def _history(self, shares: list[ShareRecord], window: int) -> HashrateHistory:
        step = max(60, window // 48)
        now = self.clock()
        first = (now - window) // step * step
        buckets = dict.fromkeys(range(int(first), int(now) + 1, step), 0.0)
        for share in shares:
            if share.timestamp >= first and not any(start <= share.timestamp < end for start, end in self.down):
                buckets[int(share.timestamp - first) // step * step + int(first)] += share.difficulty
        points = []
        for t, d in sorted(buckets.items()):
            # a step the pool was down in is not observed time
            seconds = step - sum(max(0.0, min(t + step, end) - max(t, start)) for start, end in self.down)
            points.append(HashratePoint(t=t, seconds=seconds, hashrate=d * DIFF1 / seconds if seconds > 0 else 0.0))
        return HashrateHistory(window_seconds=window, step_seconds=step, points=points)

    async def figures(self) -> PoolFigures:
        await self._enter("figures")
        now = self.clock()
        recent = [s for s in self.shares if now - s.timestamp < 3600]
        rejected = Counter(r.reason for r in self.rejects if now - r.timestamp < 3600)
        return PoolFigures(
            hashrate=self._windows(self.shares),
            connections=sum(len(c) for c in self.connections.values()),
            workers=len([w for w, c in self.connections.items() if c]),
            accounts=len({w.split(".")[0] for w, c in self.connections.items() if c}),
            shares=ShareStats(window_seconds=3600, accepted=len(recent),
                              accepted_difficulty=sum(s.difficulty for s in recent), rejected=dict(rejected)),
            blocks_found=len(self.found()),        # a candidate the node refused was not found
            last_block_found_at=max((b.found_at for b in self.found()), default=None),
            started_at=self.started_at,
            round_opened_at=self.round_opened_at, round_shares=len(self.round_shares()),
            round_difficulty=sum(s.difficulty for s in self.round_shares()),
        )

    def found(self) -> list[BlockInfo]:
        return [b for b in self.blocks_found if b.status != "rejected"]

    def round_shares(self) -> list[ShareRecord]:
        """Shares since the round opened (the last block found)."""
        return [s for s in self.shares if s.timestamp >= self.round_opened_at]

    async def network(self) -> NetworkInfo:
        await self._enter("network")
        return self.network_info

    async def hashrate_history(self, window_seconds: int) -> HashrateHistory:
        await self._enter("hashrate_history")
        return self._history(self.shares, window_seconds)

    def _worker_names(self) -> set[str]:
        return {s.worker for s in self.shares} | {w for w, c in self.connections.items() if c}

    def _summary(self, name: str) -> WorkerSummary:
        mine = [s for s in self.shares if s.worker == name]
        conns = self.connections.get(name, [])
        where = conns[0] if conns else None
        return WorkerSummary(
            name=name, account=name.split(".")[0], connections=len(conns), hashrate=self._windows(mine),
            difficulty=max((c.difficulty for c in conns), default=0.0), accepted=len(mine),
            rejected=sum(1 for r in self.rejects if r.worker == name),
            last_share_at=max((s.timestamp for s in mine), default=None),
            country=where.country if where else (mine[-1].country if mine else "ZZ"),
            subdivision=where.subdivision if where else (mine[-1].subdivision if mine else ""),
            firmware=mine[-1].firmware if mine else "unknown",
        )

    @staticmethod
    def _page(items: list[T], query: ListQuery, name: Callable[[T], str], rate: Callable[[T], float],
                 last: Callable[[T], float | None]) -> tuple[int, list[T]]:
        needle = query.search.lower()
        chosen = [i for i in items if needle in name(i).lower()]
        keys: dict[str, Callable[[T], object]] = {
            "hashrate": rate, "name": name, "last_share": lambda i: last(i) or 0.0}
        chosen.sort(key=keys[query.sort], reverse=query.descending)
        return len(chosen), chosen[query.offset : query.offset + query.limit]

    async def workers(self, query: ListQuery) -> WorkerPage:
        await self._enter("workers")
        rows = [self._summary(n) for n in sorted(self._worker_names())]
        if query.account:
            rows = [r for r in rows if r.account == query.account]
        total, items = self._page(rows, query, lambda r: r.name, lambda r: r.hashrate.m5.hashrate,
                                  lambda r: r.last_share_at)
        return WorkerPage(total=total, items=items)

    async def worker(self, name: str, history_seconds: int) -> WorkerDetail | None:
        await self._enter("worker")
        if name not in self._worker_names():
            return None
        return WorkerDetail(
            summary=self._summary(name), connections=list(self.connections.get(name, [])),
            rejected_by_reason=dict(Counter(r.reason for r in self.rejects if r.worker == name)),
            history=self._history([s for s in self.shares if s.worker == name], history_seconds),
        )

    def _account_summary(self, account: str) -> AccountSummary:
        workers = [self._summary(n) for n in sorted(self._worker_names()) if n.split(".")[0] == account]
        mine = [s for s in self.shares if s.account == account]
        return AccountSummary(
            account=account, workers=len(workers), hashrate=self._windows(mine), accepted=len(mine),
            rejected=sum(w.rejected for w in workers),
            last_share_at=max((s.timestamp for s in mine), default=None),
            balance_sat=len(mine) * 10, paid_sat=0,
        )

    async def accounts(self, query: ListQuery) -> AccountPage:
        await self._enter("accounts")
        rows = [self._account_summary(a) for a in sorted({n.split(".")[0] for n in self._worker_names()})]
        total, items = self._page(rows, query, lambda r: r.account, lambda r: r.hashrate.m5.hashrate,
                                  lambda r: r.last_share_at)
        return AccountPage(total=total, items=items)

    async def account(self, name: str, history_seconds: int) -> AccountDetail | None:
        await self._enter("account")
        if name not in {n.split(".")[0] for n in self._worker_names()}:
            return None
        return AccountDetail(
            summary=self._account_summary(name),
            workers=[self._summary(n) for n in sorted(self._worker_names()) if n.split(".")[0] == name],
            history=self._history([s for s in self.shares if s.account == name], history_seconds),
        )

    async def blocks(self, query: BlockQuery) -> list[BlockInfo]:
        await self._enter("blocks")
        chosen = [b for b in self.blocks_found if b.height >= query.min_height
                  and (query.before_height is None or b.height < query.before_height)]
        return sorted(chosen, key=lambda b: -b.height)[: query.limit]

    async def regions(self, window_seconds: int) -> RegionsView:
        await self._enter("regions")
        now = self.clock()
        rate: dict[tuple[str, str], float] = defaultdict(float)
        count: dict[tuple[str, str], int] = defaultdict(int)
        miners: dict[tuple[str, str], set[str]] = defaultdict(set)
        for share in self.shares:
            if now - share.timestamp < window_seconds:
                key = (share.country, share.subdivision)
                rate[key] += share.difficulty * DIFF1 / window_seconds
                count[key] += 1
                miners[key].add(share.worker)
        items = [RegionRate(country=c, country_name=COUNTRY_NAMES.get(c, c), subdivision=s, hashrate=h,
                            miners=len(miners[(c, s)]), shares=count[(c, s)], covered_seconds=window_seconds)
                 for (c, s), h in sorted(rate.items())]
        built = dt.datetime(2023, 4, 1, tzinfo=dt.UTC).timestamp()
        return RegionsView(window_seconds=window_seconds, database="DB-IP City Lite", database_build="2023-04-01",
                           attribution=DBIP_ATTRIBUTION, items=items, database_age_days=(now - built) / 86400,
                           max_database_age_days=45)

    async def health(self) -> HealthStatus:
        await self._enter("health")
        return HealthStatus(ok=all(c.ok for c in self.components), components=list(self.components))

    # -- control -----------------------------------------------------------------------------

    async def bans(self) -> list[BanEntry]:
        now = self.clock()
        return [b for b in self.bans_by_target.values() if b.expires_at is None or b.expires_at > now]

    async def add_ban(self, ban: BanRequest) -> BanEntry:
        now = self.clock()
        entry = BanEntry(target=ban.target, reason=ban.reason, created_at=now,
                         expires_at=now + ban.duration_seconds if ban.duration_seconds else None)
        self.bans_by_target[ban.target] = entry
        return entry

    async def remove_ban(self, target: str) -> bool:
        return self.bans_by_target.pop(target, None) is not None

    async def kick(self, worker: str, reason: str) -> int:
        closed = len(self.connections.pop(worker, []))
        if closed:
            self.kicked.append((worker, reason))
        return closed

    async def reconnect(self, worker: str, request: ReconnectRequest) -> int:
        asked = len(self.connections.get(worker, []))
        if asked:
            self.reconnected.append((worker, request))
        return asked

    async def port_difficulties(self) -> list[PortDifficulty]:
        return list(self.ports.values())

    async def set_port_difficulty(self, port: int, update: PortDifficultyUpdate) -> PortDifficulty | None:
        current = self.ports.get(port)
        if current is None:
            return None
        changes = {k: v for k, v in msgspec.structs.asdict(update).items() if v is not msgspec.UNSET}
        if changes.get("max_difficulty", 0) > 1e15:
            raise Rejected("max_difficulty above what this pool allows (1e15)", 409)
        self.ports[port] = msgspec.structs.replace(current, **changes)
        return self.ports[port]

    async def reload_config(self) -> ReloadResult:
        if self.config_path is None:
            raise Rejected("this pool was started without a config file", 409)
        try:
            config = pool.config.load(self.config_path, environ={})
        except ConfigError as exc:
            return ReloadResult(ok=False, error=str(exc))
        self.reloads += 1
        for port in config.stratum.ports:
            if port.port in self.ports:
                self.ports[port.port] = PortDifficulty(
                    port=port.port, start_difficulty=port.start_difficulty, min_difficulty=port.min_difficulty,
                    max_difficulty=port.max_difficulty)
        return ReloadResult(ok=True, applied=["stratum.ports"], requires_restart=[])

    # -- exports -----------------------------------------------------------------------------

    def kinds(self) -> list[ExportKind]:
        return [
            ExportKind(name="ccaf-countries", description="CCAF country CSV", formats=["csv"], periods=["monthly"]),
            ExportKind(name="regions", description="Hashrate by region", formats=["csv", "json"],
                       periods=["daily", "monthly"]),
        ]

    async def export(self, kind: str, period: str, start: str, end: str, fmt: str) -> tuple[bytes, str]:
        import datetime as dt

        lo = dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC).timestamp()
        hi = dt.datetime.fromisoformat(end).replace(tzinfo=dt.UTC).timestamp() + 86400   # end is inclusive
        chosen = [s for s in self.shares if lo <= s.timestamp < hi]
        if not chosen:
            raise Rejected(f"no shares between {start} and {end}", 404)
        per_country: dict[str, float] = defaultdict(float)
        for share in chosen:
            per_country[share.country] += share.difficulty * DIFF1 / (hi - lo)
        total = sum(per_country.values())
        rows = sorted(per_country.items(), key=lambda kv: -kv[1])
        if fmt == "json":
            body = [{"country": c, "average_hashrate": h, "share": h / total} for c, h in rows]
            return msgspec.json.encode({"period": period, "start": start, "data": body}), "application/json"
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["date", "country", "monthly_hashrate_%", "monthly_absolute_hashrate_EH/S"])
        for country, rate in rows:
            writer.writerow([start, COUNTRY_NAMES.get(country, country), f"{100 * rate / total:.2f}%",
                             f"{rate / 1e18:.2f}"])
        return out.getvalue().encode(), "text/csv; charset=utf-8"

    async def map_view(self, period: str, day: str | None) -> MapView:
        """Country cells of every share held (no privacy rule: the real one is tested in tests/geo)."""
        per_country: dict[str, float] = defaultdict(float)
        for share in self.shares:
            per_country[share.country] += share.difficulty
        total = sum(per_country.values()) or 1.0
        seconds = 86400.0
        regions = [MapRegion(level="country", country_iso=c, country_numeric=None,
                             country_name=COUNTRY_NAMES.get(c, c), subdivision=None, subdivision_code=None,
                             share_of_pool=d / total, share_of_country=None, hashrate=d * DIFF1 / seconds,
                             miners=10, hosting_share=0.0, folded=False) for c, d in per_country.items()]
        start = day or time.strftime("%Y-%m-%d", time.gmtime(self.clock()))
        none = Folding(within_country_cells=0, within_country_share=0.0, global_cells=0, global_share=0.0,
                       withheld_share=0.0)
        return MapView(period=period, period_start=start, period_last=start, complete=False,
                       period_seconds=seconds, periods=[start], pool_hashrate=total * DIFF1 / seconds,
                       accepted_shares=len(self.shares), pool_share_of_network=None, share_geolocated=1.0,
                       unknown_share=0.0, private_share=0.0, hosting_share=0.0, hosting_source=None,
                       proxy_share=0.0, folding=none, databases=[], max_database_age_days=45,
                       attribution="DB-IP (CC BY 4.0)", basis="test",
                       privacy=Privacy(min_miners=10, dominance_n=2, dominance_percent=85.0, miners_rounding=10,
                                       top_read_depth=32, top_miners_kept=1000), regions=regions)

    # -- metrics -----------------------------------------------------------------------------

    async def snapshot(self) -> MetricsSnapshot:
        """One process whose stratum snapshot holds these shares, rejects and connections."""
        rejected: dict[str, int] = defaultdict(int)
        for rej in self.rejects:
            rejected[rej.reason] += 1
        connected = [c for cs in self.connections.values() for c in cs]
        windows = self._windows(self.shares)
        per_country: dict[str, float] = defaultdict(float)
        now = self.clock()
        for share in self.shares:
            if now - share.timestamp < 300:
                per_country[share.country] += share.difficulty * DIFF1 / 300
        ports = [snapshots.port(p, connections=sum(1 for c in connected if c.port == p)) for p in self.ports]
        ports[0].accepted = len(self.shares)
        ports[0].accepted_difficulty = sum(s.difficulty for s in self.shares)
        ports[0].rejected = dict(rejected)
        rows = [snapshots.zeroed(ConnRow, worker=w, account=w.split(".")[0], port=c.port)
                for w, cs in self.connections.items() for c in cs]
        node = snapshots.process(
            stratum={"connections": len(connected), "ports": ports, "fanout": self.fanout.snapshot(),
                     "block_to_notify": self.block_to_notify.snapshot()},
            ledger={"lag_s": 0.08, "pending_shares": 3, "redis_up": self.components[0].ok}, rows=rows)
        return snapshots.metrics(
            node, at=now, pool_hashrate=windows.m5, redis_latency_seconds=0.0004,
            chain={"template_age": 12.5, "height": self.network_info.height + 1,
                   "network_difficulty": self.network_info.difficulty,
                   "nodes": [NodeHealth(name="http://rpcuser:hunter2@127.0.0.1:8332", url="", latency_ms=2.0)]},
            ports=[PortRate(port=p, hashrate=windows.m5.hashrate) for p in self.ports],
            countries=[CountryRate(country=c, hashrate=h) for c, h in sorted(per_country.items())],
            blocks_found=len(self.found()))
