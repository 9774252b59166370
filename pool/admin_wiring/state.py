"""PoolState over the real pool: Redis books (hashrate, workers, accounts, blocks, regions), the
stratum servers of every process (connections, workers, rejects) and the chain."""

from __future__ import annotations

import asyncio
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
    reject_names,
)
from pool.admin_wiring.health import HealthReader
from pool.admin_wiring.miner import best_shares
from pool.admin_wiring.network import NetworkReader, subsidy_sat
from pool.admin_wiring.views import PoolViews
from pool.cluster.snapshot import ConnRow, NodeSnapshot
from pool.config import keeps_balances
from pool.geo.store import LiveRegions, pool_regions
from pool.geo.tables import world_bank_name
from pool.shares.ranking import rank_key
from pool.shares.reader import AccountInfo

if TYPE_CHECKING:
    from pool.chain.jobs import JobManager
    from pool.chain.types import BlockResult
    from pool.config import Config
    from pool.geo.locator import GeoLocator
    from pool.geo.rollup import GeoRollup
    from pool.money.service import MoneyService
    from pool.shares.ledger import Ledger

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


def _owner(worker: str) -> str:
    return worker.split(".", 1)[0]


def _last_share(worker: str, live: dict[str, list[ConnRow]], last_seen: dict[str, float]) -> float:
    return max([r.last_share_at for r in live.get(worker, []) if r.last_share_at] + [last_seen.get(worker, 0.0)])


def _account_last_share(account: str, workers: list[str], live: dict[str, list[ConnRow]],
                        last_seen: dict[str, float], info: dict[str, AccountInfo]) -> float:
    recorded = info.get(account)
    return max([_last_share(w, live, last_seen) for w in workers] + [recorded.last_seen if recorded else 0.0])


class PoolStateAdapter:
    def __init__(self, config: Config, ledger: Ledger, jobs: JobManager, blocks: list[BlockResult], *,
                 views: PoolViews, network: NetworkReader, health: HealthReader, money: MoneyService | None = None,
                 locator: GeoLocator | None = None, rollup: GeoRollup | None = None) -> None:
        self.config = config
        self.ledger = ledger
        self.jobs = jobs
        self.block_results = blocks         # this process's (the app appends)
        self.views = views
        self.network_reader = network
        self.health_reader = health
        self.money = money
        self.locator = locator
        self.rollup = rollup
        self.keys = ledger.keys
        self.book = ledger.reader.hashrate
        self.ranking = ledger.reader.ranking

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
        current = await self._soft(self.ledger.reader.round(), None)
        shares = self.views.shares(nodes, SHARE_WINDOW)
        if hashrate.h1.covered_seconds > 0 or hashrate.h1.shares:
            # The ledger's count of the same window as the 1 h figure (in-memory counts restart at 0).
            shares.accepted, shares.accepted_difficulty = hashrate.h1.shares, hashrate.h1.difficulty
            shares.observed_seconds = hashrate.h1.covered_seconds
        return PoolFigures(
            hashrate=hashrate, connections=sum(n.stratum.connections for n in nodes),
            workers=len({r.worker for r in rows}), accounts=len({r.account for r in rows}),
            shares=shares, blocks_found=found, last_block_found_at=last_at,
            started_at=min(n.started_at for n in nodes),
            round_opened_at=(current.opened_at or None) if current else None,
            round_shares=current.shares if current else 0, round_difficulty=current.difficulty if current else 0.0)

    async def _block_count(self) -> tuple[int, float | None]:
        """Blocks the ledger holds plus accepted ones this process found that are not flushed yet."""
        client = self.client
        total = int(await client.zcard(self.keys.blocks))
        newest = await client.zrevrange(self.keys.blocks, 0, 0, withscores=True)
        last_at = float(newest[0][1]) if newest else None
        accepted = [b for b in self.block_results if b.accepted]
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
            f = self.jobs.snapshot()
            return NetworkInfo(chain=self.config.chain.network, height=max(0, f.height - 1),
                               difficulty=f.network_difficulty, tip_time=int(f.last_new_block_at),
                               retargets=self.config.chain.network not in ("regtest", "devnet"))

    async def hashrate_history(self, window_seconds: int) -> HashrateHistory:
        return await self.book.history(self.client, self.keys.pool, "d", window_seconds)

    # -- workers --------------------------------------------------------------------------------

    async def _worker_candidates(self, nodes: list[NodeSnapshot], account: str = "",
                                 ) -> tuple[dict[str, list[ConnRow]], dict[str, float]]:
        """Workers to list: connected now (their rows) or with a share in the last day (last seen)."""
        live: dict[str, list[ConnRow]] = {}
        for row in self.views.rows(nodes):
            if not account or row.account == account:
                live.setdefault(row.worker, []).append(row)
        since = time.time() - RECENT_SECONDS
        return live, await self._soft(self.ledger.reader.last_seen_workers(account or None, since), {})

    def _by_shard(self, names: list[str], owner: Callable[[str], str], prefix: str = "") -> dict[str, list[str]]:
        by_shard: dict[str, list[str]] = {}
        for name in names:
            by_shard.setdefault(self.keys.shard(owner(name)), []).append(prefix + name)
        return by_shard

    async def _windows(self, kind: str, names: list[str], owner: Callable[[str], str],
                       now: float | None = None) -> dict[str, HashrateWindows]:
        by_shard = self._by_shard(names, owner, kind + ":")
        return await self._soft(self.book.windows_by_tag(self.client, by_shard, now), {})

    async def _worker_rows(self, names: list[str], live: dict[str, list[ConnRow]],
                           last_seen: dict[str, float], now: float | None = None) -> list[WorkerSummary]:
        """Summaries of exactly these workers, in this order (windows read for them alone, at `now`:
        the instant their ranking was read, so the 5-minute figures shown are the ones ranked)."""
        # The three reads overlap: one round trip's wait for a page (the top-workers list is timed).
        windows, bests, tallies = await asyncio.gather(
            self._windows("w", names, _owner, now),
            self._soft(self.ledger.best.workers(self.client, names), None),
            self._soft(self.ledger.tallies.workers(self.client, names), None))
        out = []
        for name in names:
            conns = live.get(name, [])
            newest = max(conns, key=lambda r: r.connected_at) if conns else None
            on_line = max((r.best_difficulty for r in conns), default=0.0) or None
            tally = tallies.get(name) if tallies is not None else None
            if tally is not None and tally.since is None:   # nothing counted by the books yet
                tally = None
            out.append(WorkerSummary(
                name=name, account=_owner(name), connections=len(conns),
                hashrate=windows.get("w:" + name, HashrateWindows()),
                difficulty=max((r.difficulty for r in conns), default=0.0),
                accepted=tally.accepted if tally else sum(r.accepted for r in conns),
                rejected=tally.rejected if tally else sum(sum(r.rejected.values()) for r in conns),
                counted_since=tally.since if tally else None,
                last_share_at=_last_share(name, live, last_seen) or None,
                # Offline: as its last share was tagged (the books keep it).
                country=newest.country if newest else tally.country if tally else "ZZ",
                subdivision=newest.subdivision if newest else tally.subdivision if tally else "",
                firmware=newest.firmware if newest else tally.firmware if tally else "unknown",
                best=best_shares(bests.get(name), on_line) if bests is not None else None))
        return out

    async def _ordered(self, names: list[str], query: ListQuery, kind: str, owner: Callable[[str], str],
                       last_share: Callable[[str], float], now: float) -> list[str]:
        """`names` matching the search, in the query's order. By hashrate: by the 5-minute figure
        (warming-up ones after the others, pool.shares.ranking), read from the rank windows, so
        50,000 workers are ranked without reading their buckets (the page's own figures are then
        read for its rows only)."""
        needle = query.search.lower()
        chosen = [n for n in names if needle in n.lower()]
        if query.sort == "hashrate":
            by_shard = self._by_shard(chosen, owner)
            figures = await self._soft(self.ranking.figures_of(self.client, kind, by_shard, now), {})
            empty = HashrateWindows().m5
            chosen.sort(key=lambda n: rank_key(n, figures.get(n, empty)), reverse=query.descending)
        elif query.sort == "name":
            chosen.sort(reverse=query.descending)
        else:
            chosen.sort(key=lambda n: (last_share(n), n), reverse=query.descending)
        return chosen

    async def _fastest_workers(self, nodes: list[NodeSnapshot], query: ListQuery, now: float) -> WorkerPage | None:
        """The first pages of all workers by hashrate without listing them: the top names from the
        rank windows, the total from counts. None when the page reaches the ranked workers that read
        0 H/s (the full listing orders them by name among those without a share): then the full
        listing answers."""
        want = query.offset + query.limit
        top = await self.ranking.top(self.client, "w", self.keys.all_shards(), want, now)
        if len(top) < want or (top[-1][1].warming_up and top[-1][1].hashrate == 0):
            return None
        live: dict[str, list[ConnRow]] = {}
        for row in self.views.rows(nodes):
            live.setdefault(row.worker, []).append(row)
        since = time.time() - RECENT_SECONDS
        reader = self.ledger.reader
        seen_live = await reader.last_seen_of(list(live))
        total = await reader.count_seen_workers(since) + sum(1 for w in live if seen_live.get(w, 0.0) < since)
        names = [name for name, _ in top[query.offset:want]]
        last_seen = await reader.last_seen_of(names)
        return WorkerPage(total=total, items=await self._worker_rows(names, live, last_seen, now))

    async def workers(self, query: ListQuery) -> WorkerPage:
        nodes = await self.views.nodes()
        now = time.time()
        if query.sort == "hashrate" and query.descending and not query.search and not query.account:
            try:
                page = await self._fastest_workers(nodes, query, now)
            except REDIS_ERRORS as exc:
                log.debug("worker ranking without Redis: %s", exc)
                page = None
            if page is not None:
                return page
        live, last_seen = await self._worker_candidates(nodes, query.account)
        names = await self._ordered(list(set(live) | set(last_seen)), query, "w", _owner,
                                    lambda n: _last_share(n, live, last_seen), now)
        page = names[query.offset:query.offset + query.limit]
        return WorkerPage(total=len(names), items=await self._worker_rows(page, live, last_seen, now))

    async def worker(self, name: str, history_seconds: int) -> WorkerDetail | None:
        nodes = await self.views.nodes()
        live, last_seen = await self._worker_candidates(nodes, _owner(name))
        if name not in live and name not in last_seen:
            return None
        summary = (await self._worker_rows([name], live, last_seen))[0]
        conns = live.get(name, [])
        rejected: dict[str, int] = {}
        if summary.counted_since is not None:       # the books' count: the reasons of the same span
            by_reason = await self._soft(self.ledger.tallies.reasons(self.client, [name]), {})
            rejected = reject_names(by_reason.get(name, {}))
        else:
            for row in conns:
                for key, count in reject_names(row.rejected).items():
                    rejected[key] = rejected.get(key, 0) + count
        history = await self.book.history(self.client, self.keys.shard(_owner(name)), "w:" + name, history_seconds)
        return WorkerDetail(
            summary=summary, rejected_by_reason=rejected, history=history,
            connections=[ConnectionInfo(port=r.port, address=r.address, connected_at=r.connected_at,
                                        difficulty=r.difficulty, user_agent=r.user_agent, country=r.country,
                                        subdivision=r.subdivision) for r in conns])

    # -- accounts -------------------------------------------------------------------------------

    async def _account_rows(self, names: list[str], live: dict[str, list[ConnRow]], last_seen: dict[str, float],
                            info: dict[str, AccountInfo], now: float | None = None) -> list[AccountSummary]:
        windows = await self._windows("a", names, lambda n: n, now)
        # SOLO (the scheme, or chain.mode = "solo" whose coinbase pays the finder) keeps no balances.
        books = keeps_balances(self.config)
        owed, paid = await self._balances(names) if books else (None, None)
        rejects = await self._soft(self.ledger.tallies.account_rejected(self.client, names), None)
        workers_of: dict[str, list[str]] = {}
        for worker in set(live) | set(last_seen):
            workers_of.setdefault(_owner(worker), []).append(worker)
        out = []
        for name in names:
            mine = workers_of.get(name, [])
            recorded = info.get(name)
            counted = rejects.get(name) if rejects is not None else None
            counted = counted if counted and counted[1] is not None else None
            out.append(AccountSummary(
                account=name, workers=len(mine), hashrate=windows.get("a:" + name, HashrateWindows()),
                accepted=recorded.shares if recorded else sum(r.accepted for w in mine for r in live.get(w, [])),
                rejected=counted[0] if counted else sum(sum(r.rejected.values()) for w in mine
                                                        for r in live.get(w, [])),
                rejected_since=counted[1] if counted else None,
                last_share_at=_account_last_share(name, mine, live, last_seen, info) or None,
                balance_sat=owed.get(name, 0) // 1000 if owed is not None else None,
                paid_sat=paid.get(name, 0) // 1000 if paid is not None else None))
        return out

    async def _balances(self, names: list[str]) -> tuple[dict[str, int] | None, dict[str, int] | None]:
        """(balance, paid so far) in msat per account from the PostgreSQL books; an account the books
        never credited or paid is absent (0). (None, None) when there are no books or they do not
        answer: an amount shown as unknown, never as 0."""
        if self.money is None:
            return None, None
        if not names:
            return {}, {}
        books = self.money.books
        try:
            return await books.balances_of(names), await books.paid_of(names)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            log.warning("admin view without balances: %s", exc)
            return None, None

    async def _account_candidates(self, nodes: list[NodeSnapshot], only: str = "") -> tuple[
            dict[str, list[ConnRow]], dict[str, float], dict[str, AccountInfo]]:
        live, last_seen = await self._worker_candidates(nodes, only)
        recorded = await self._soft(self.ledger.reader.accounts(time.time() - RECENT_SECONDS), [])
        return live, last_seen, {a.account: a for a in recorded if not only or a.account == only}

    async def accounts(self, query: ListQuery) -> AccountPage:
        live, last_seen, info = await self._account_candidates(await self.views.nodes())
        owners = {_owner(w) for w in (*live, *last_seen)} | set(info)
        workers_of: dict[str, list[str]] = {}
        for worker in set(live) | set(last_seen):
            workers_of.setdefault(_owner(worker), []).append(worker)
        now = time.time()
        names = await self._ordered(list(owners), query, "a", lambda a: a,
                                    lambda a: _account_last_share(a, workers_of.get(a, []), live, last_seen, info), now)
        page = names[query.offset:query.offset + query.limit]
        return AccountPage(total=len(names), items=await self._account_rows(page, live, last_seen, info, now))

    async def account(self, name: str, history_seconds: int) -> AccountDetail | None:
        nodes = await self.views.nodes()
        live, last_seen, info = await self._account_candidates(nodes, name)
        workers = sorted(set(live) | set(last_seen))
        if not workers and name not in info:
            return None
        summary = (await self._account_rows([name], live, last_seen, info))[0]
        history = await self.book.history(self.client, self.keys.shard(name), "a:" + name, history_seconds)
        return AccountDetail(summary=summary, workers=await self._worker_rows(workers, live, last_seen),
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
        # Candidates no node took, found by any process (the ledger records them in Redis).
        for refused in await self._soft(self.ledger.reader.refused_blocks(query.limit + BLOCK_SCAN), []):
            out.setdefault(refused.block_hash, BlockInfo(
                height=refused.height, hash=refused.block_hash, found_at=refused.found_at, worker=refused.worker,
                account=refused.account, status="rejected", reward_sat=refused.reward_sat,
                fees_sat=max(0, refused.reward_sat - subsidy_sat(refused.height, halving)), reason=refused.reason))
        # This process's candidates Redis has not got yet (not flushed, or Redis is down).
        for result in self.block_results:
            out.setdefault(result.block_hash, BlockInfo(
                height=result.height, hash=result.block_hash, found_at=result.found_at, worker=result.worker,
                account=result.account, status="submitted" if result.accepted else "rejected",
                reward_sat=result.coinbase_value,
                fees_sat=max(0, result.coinbase_value - subsidy_sat(result.height, halving)),
                reason=result.refusal))
        chosen = [b for b in out.values() if b.height >= query.min_height
                  and (query.before_height is None or b.height < query.before_height)]
        chosen.sort(key=lambda b: (-b.height, -b.found_at))
        return chosen[:query.limit]

    # -- regions --------------------------------------------------------------------------------

    async def regions(self, window_seconds: int) -> RegionsView:
        locator, rollup = self.locator, self.rollup
        location = next((d for d in locator.databases if d.role == "location"), None) if locator else None
        view = RegionsView(window_seconds=window_seconds,
                           database=database_label(location.type) if location else "none",
                           database_build=location.build_date if location else "",
                           attribution=locator.attribution if locator else "", items=[],
                           database_age_days=locator.location_age_days() if locator else None,
                           max_database_age_days=locator.config.max_database_age_days if locator else 45)
        if rollup is None:
            return view
        min_shares = self.ledger.config.warming_up_shares
        live = await self.live_regions(window_seconds, min_shares)
        total = sum(r.figure.difficulty for r in live.items)
        view.items = [
            RegionRate(country=r.country, country_name=world_bank_name(r.country), subdivision=r.subdivision,
                       subdivision_code=r.subdivision_code, hashrate=r.figure.hashrate, miners=r.miners,
                       share=r.figure.difficulty / total if total > 0 else 0.0, shares=r.figure.shares,
                       low=r.figure.low, high=r.figure.high, covered_seconds=r.figure.covered_seconds,
                       warming_up=r.figure.warming_up)
            for r in live.items]
        view.country_miners = live.country_miners
        view.warming_up_shares = min_shares
        return view

    async def live_regions(self, window_seconds: int, min_shares: int) -> LiveRegions:
        """Region windows over the same span and divisor as the pool's window (they sum to it)."""
        assert self.rollup is not None
        now = time.time()
        return await pool_regions(self.client, self.book, self.rollup.keys, window_seconds, now, min_shares)

    # -- health ---------------------------------------------------------------------------------

    async def health(self) -> HealthStatus:
        return await self.health_reader.status()

