"""PoolState over the real pool: Redis books (hashrate, workers, accounts, blocks, regions), the
stratum servers of every process (connections, workers, rejects) and the chain."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import asyncpg
from redis.exceptions import RedisError

from pool.admin.interfaces import (
    AccountDetail,
    AccountPage,
    AccountSummary,
    BlockInfo,
    BlockQuery,
    ConnectionInfo,
    HashrateHistory,
    HashrateWindows,
    HealthStatus,
    ListQuery,
    NetworkInfo,
    PoolFigures,
    RegionRate,
    RegionsView,
    WorkerDetail,
    WorkerPage,
    WorkerSummary,
)
from pool.admin_wiring.health import health_status
from pool.admin_wiring.local import ConnRow, NodeSnapshot
from pool.admin_wiring.network import NetworkReader, subsidy_sat
from pool.admin_wiring.views import PoolViews, reject_names
from pool.geo.store import read_live_regions
from pool.geo.tables import world_bank_name
from pool.shares.redis_conn import text

if TYPE_CHECKING:
    from pool.admin_wiring.parts import PoolParts

log = logging.getLogger("geostratum.admin")
T = TypeVar("T")

SHARE_WINDOW = 3600                 # the overview's share counts cover the last hour
RECENT_SECONDS = 86_400             # workers/accounts without a connection are listed this long after a share
BLOCK_SCAN = 1000                   # blocks read from the ledger beyond the page asked for
REDIS_ERRORS = (RedisError, OSError)


def database_label(kind: str) -> str:
    """'DBIP-City-Lite' -> 'DB-IP City Lite', 'GeoLite2-City' -> 'GeoLite2 City'."""
    if kind.startswith("DBIP-"):
        return "DB-IP " + kind[5:].replace("-", " ")
    return kind.replace("-", " ")


def _page(items: list[T], query: ListQuery, name: Callable[[T], str], hashrate: Callable[[T], float],
          last: Callable[[T], float | None]) -> tuple[int, list[T]]:
    needle = query.search.lower()
    chosen = [item for item in items if needle in name(item).lower()]
    keys: dict[str, Callable[[T], object]] = {"hashrate": hashrate, "name": name,
                                               "last_share": lambda item: last(item) or 0.0}
    chosen.sort(key=keys[query.sort], reverse=query.descending)
    return len(chosen), chosen[query.offset:query.offset + query.limit]


class PoolStateAdapter:
    def __init__(self, parts: PoolParts, views: PoolViews, network: NetworkReader) -> None:
        self.parts = parts
        self.views = views
        self.network_reader = network
        self.ledger = parts.ledger
        self.keys = parts.ledger.keys
        self.book = parts.ledger.reader.hashrate

    @property
    def client(self):  # type: ignore[no-untyped-def]
        return self.ledger.client

    async def _soft(self, read: Awaitable[T], fallback: T) -> T:
        """Redis down: the views answer from what the processes know, and health says why."""
        try:
            return await read
        except REDIS_ERRORS as exc:
            log.debug("admin view without Redis data: %s", exc)
            return fallback

    # -- overview -------------------------------------------------------------------------------

    async def figures(self) -> PoolFigures:
        nodes = await self.views.nodes()
        rows = self.views.rows(nodes)
        hashrate = await self._soft(self.book.pool_windows(self.client), HashrateWindows())
        found, last_at = await self._soft(self._block_count(), (0, None))
        return PoolFigures(
            hashrate=hashrate, connections=sum(n.connections for n in nodes),
            workers=len({r.worker for r in rows}), accounts=len({r.account for r in rows}),
            shares=self.views.shares(nodes, SHARE_WINDOW), blocks_found=found, last_block_found_at=last_at,
            started_at=min(n.started_at for n in nodes))

    async def _block_count(self) -> tuple[int, float | None]:
        """Blocks the ledger holds plus accepted ones this process found that are not flushed yet."""
        client = self.client
        total = int(await client.zcard(self.keys.blocks))
        newest = await client.zrevrange(self.keys.blocks, 0, 0, withscores=True)
        last_at = float(newest[0][1]) if newest else None
        accepted = [b for b in self.parts.blocks if b.accepted]
        if accepted:
            async with client.pipeline(transaction=False) as pipe:
                for block in accepted:
                    pipe.zscore(self.keys.blocks, block.block_hash)
                known = await pipe.execute()
            for block, score in zip(accepted, known, strict=True):
                if score is None:
                    total += 1
                    last_at = max(last_at or 0.0, block.found_at)
        return total, last_at

    async def network(self) -> NetworkInfo:
        try:
            return await self.network_reader.info()
        except Exception as exc:  # the node is down: the chain watcher's last view, flagged in health
            log.warning("admin: node not answering (%s); using the last template's figures", exc)
            f = self.parts.jobs.figures()
            return NetworkInfo(chain=self.parts.config.chain.network, height=max(0, f.height - 1),
                               difficulty=f.network_difficulty, tip_time=int(f.last_new_block_at),
                               retargets=self.parts.config.chain.network not in ("regtest", "devnet"))

    async def hashrate_history(self, window_seconds: int) -> HashrateHistory:
        return await self.book.history(self.client, self.keys.pool, "d", window_seconds)

    # -- workers --------------------------------------------------------------------------------

    async def _worker_summaries(self, nodes: list[NodeSnapshot], names: set[str] | None = None,
                                account: str = "") -> list[WorkerSummary]:
        live: dict[str, list[ConnRow]] = {}
        for row in self.views.rows(nodes):
            live.setdefault(row.worker, []).append(row)
        seen = await self._soft(self.ledger.reader.workers(account or None, time.time() - RECENT_SECONDS), [])
        last_seen = {w.worker: w.last_seen for w in seen}
        wanted = set(live) | set(last_seen)
        if names is not None:
            wanted &= names
        if account:
            wanted = {w for w in wanted if w.split(".", 1)[0] == account}
        by_shard: dict[str, list[str]] = {}
        for name in wanted:
            by_shard.setdefault(self.keys.shard(name.split(".", 1)[0]), []).append("w:" + name)
        windows: dict[str, HashrateWindows] = {}
        for tag, fields in by_shard.items():
            windows.update(await self._soft(self.book.windows(self.client, tag, fields), {}))
        out = []
        for name in sorted(wanted):
            conns = live.get(name, [])
            newest = max(conns, key=lambda r: r.connected_at) if conns else None
            last_share = max([r.last_share_at for r in conns if r.last_share_at] + [last_seen.get(name, 0.0)])
            out.append(WorkerSummary(
                name=name, account=name.split(".", 1)[0], connections=len(conns),
                hashrate=windows.get("w:" + name, HashrateWindows()),
                difficulty=max((r.difficulty for r in conns), default=0.0),
                accepted=sum(r.accepted for r in conns), rejected=sum(sum(r.rejected.values()) for r in conns),
                last_share_at=last_share or None, country=newest.country if newest else "ZZ",
                subdivision=newest.subdivision if newest else "", firmware=newest.firmware if newest else "unknown"))
        return out

    async def workers(self, query: ListQuery) -> WorkerPage:
        rows = await self._worker_summaries(await self.views.nodes(), account=query.account)
        total, items = _page(rows, query, lambda r: r.name, lambda r: r.hashrate.m5.hashrate,
                             lambda r: r.last_share_at)
        return WorkerPage(total=total, items=items)

    async def worker(self, name: str, history_seconds: int) -> WorkerDetail | None:
        nodes = await self.views.nodes()
        found = await self._worker_summaries(nodes, names={name})
        if not found:
            return None
        conns = [r for r in self.views.rows(nodes) if r.worker == name]
        rejected: dict[str, int] = {}
        for row in conns:
            for key, count in reject_names(row.rejected).items():
                rejected[key] = rejected.get(key, 0) + count
        account = name.split(".", 1)[0]
        history = await self.book.history(self.client, self.keys.shard(account), "w:" + name, history_seconds)
        return WorkerDetail(
            summary=found[0], rejected_by_reason=rejected, history=history,
            connections=[ConnectionInfo(port=r.port, address=r.address, connected_at=r.connected_at,
                                        difficulty=r.difficulty, user_agent=r.user_agent, country=r.country,
                                        subdivision=r.subdivision) for r in conns])

    # -- accounts -------------------------------------------------------------------------------

    async def _account_summaries(self, nodes: list[NodeSnapshot], only: str = "") -> list[AccountSummary]:
        workers = await self._worker_summaries(nodes, account=only)
        recorded = await self._soft(self.ledger.reader.accounts(time.time() - RECENT_SECONDS), [])
        info = {a.account: a for a in recorded}
        names = {w.account for w in workers} | set(info)
        if only:
            names &= {only}
        by_shard: dict[str, list[str]] = {}
        for name in names:
            by_shard.setdefault(self.keys.shard(name), []).append("a:" + name)
        windows: dict[str, HashrateWindows] = {}
        for tag, fields in by_shard.items():
            windows.update(await self._soft(self.book.windows(self.client, tag, fields), {}))
        ordered = sorted(names)
        balance_of = await self._balances(ordered)
        keeps_balances = self.parts.config.payouts.scheme != "solo"     # SOLO pays the finder directly
        out = []
        for name in ordered:
            mine = [w for w in workers if w.account == name]
            recorded_info = info.get(name)
            last = max([w.last_share_at or 0.0 for w in mine] + [recorded_info.last_seen if recorded_info else 0.0])
            out.append(AccountSummary(
                account=name, workers=len(mine), hashrate=windows.get("a:" + name, HashrateWindows()),
                accepted=recorded_info.shares if recorded_info else sum(w.accepted for w in mine),
                rejected=sum(w.rejected for w in mine), last_share_at=last or None,
                balance_sat=balance_of.get(name, 0) // 1000 if keeps_balances and balance_of is not None else None))
        return out

    async def _balances(self, names: list[str]) -> dict[str, int] | None:
        """msat per account: from the PostgreSQL books when the pool keeps them, else the Redis ledger.
        None when the books' database does not answer (a balance shown as unknown, never as 0)."""
        if not names:
            return {}
        if self.parts.money is not None:
            try:
                return await self.parts.money.books.balances_of(names)
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning("admin view without balances: %s", exc)
                return None
        raw = await self._soft(self.client.hmget(self.keys.balances, names), [])
        return {name: int(text(value)) for name, value in zip(names, raw, strict=False) if value is not None}

    async def accounts(self, query: ListQuery) -> AccountPage:
        rows = await self._account_summaries(await self.views.nodes())
        total, items = _page(rows, query, lambda r: r.account, lambda r: r.hashrate.m5.hashrate,
                             lambda r: r.last_share_at)
        return AccountPage(total=total, items=items)

    async def account(self, name: str, history_seconds: int) -> AccountDetail | None:
        nodes = await self.views.nodes()
        found = await self._account_summaries(nodes, only=name)
        if not found:
            return None
        history = await self.book.history(self.client, self.keys.shard(name), "a:" + name, history_seconds)
        return AccountDetail(summary=found[0], workers=await self._worker_summaries(nodes, account=name),
                             history=history)

    # -- blocks ---------------------------------------------------------------------------------

    async def blocks(self, query: BlockQuery) -> list[BlockInfo]:
        halving = self.network_reader.halving_interval()
        recorded = await self._soft(self.ledger.reader.blocks_with_effort(query.limit + BLOCK_SCAN), [])
        out: dict[str, BlockInfo] = {}
        for info, round_difficulty in recorded:
            status = info.status if info.status in ("pending", "confirmed", "orphaned") else "pending"
            out[info.block_hash] = BlockInfo(
                height=info.height, hash=info.block_hash, found_at=info.found_at, worker=info.worker,
                account=info.account, status=status, reward_sat=info.reward_sat,  # type: ignore[arg-type]
                fees_sat=max(0, info.reward_sat - subsidy_sat(info.height, halving)),
                confirmations=info.confirmations, network_difficulty=info.network_difficulty,
                effort=round_difficulty / info.network_difficulty
                if round_difficulty is not None and info.network_difficulty > 0 else None)
        # This process's candidates the ledger has not got: refused by the node, or not flushed yet.
        for result in self.parts.blocks:
            if result.block_hash in out:
                continue
            out[result.block_hash] = BlockInfo(
                height=result.height, hash=result.block_hash, found_at=result.found_at, worker=result.worker,
                account=result.account, status="submitted" if result.accepted else "rejected",
                reward_sat=result.coinbase_value,
                fees_sat=max(0, result.coinbase_value - subsidy_sat(result.height, halving)))
        chosen = [b for b in out.values() if b.height >= query.min_height
                  and (query.before_height is None or b.height < query.before_height)]
        chosen.sort(key=lambda b: (-b.height, -b.found_at))
        return chosen[:query.limit]

    # -- regions --------------------------------------------------------------------------------

    async def regions(self, window_seconds: int) -> RegionsView:
        locator, rollup = self.parts.locator, self.parts.rollup
        location = next((d for d in locator.databases if d.role == "location"), None) if locator else None
        view = RegionsView(window_seconds=window_seconds,
                           database=database_label(location.type) if location else "none",
                           database_build=location.build_date if location else "",
                           attribution=locator.attribution if locator else "", items=[])
        if rollup is None:
            return view
        min_shares = self.ledger.config.warming_up_shares
        live = await read_live_regions(self.client, rollup.keys, window_seconds, min_shares=min_shares)
        total = sum(r.figure.difficulty for r in live.items)
        view.items = [
            RegionRate(country=r.country, country_name=world_bank_name(r.country), subdivision=r.subdivision,
                       hashrate=r.figure.hashrate, miners=r.miners,
                       share=r.figure.difficulty / total if total > 0 else 0.0, shares=r.figure.shares,
                       low=r.figure.low, high=r.figure.high, covered_seconds=r.figure.covered_seconds,
                       warming_up=r.figure.warming_up)
            for r in live.items]
        view.country_miners = live.country_miners
        view.warming_up_shares = min_shares
        return view

    # -- health ---------------------------------------------------------------------------------

    async def health(self) -> HealthStatus:
        return await health_status(self.parts, self.views)
