"""The miner page's read side: an account's best shares, expected earnings, solo odds, payout history
and the pool's Stratum URLs, next to the account's workers and hashrate (PoolState.account)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import asyncpg
from redis.exceptions import RedisError

from pool.admin import earnings
from pool.admin.interfaces import AccountDetail, BestShare, BestShares
from pool.admin.miner_types import AccountBest, MinerExtras, PayoutEntry
from pool.admin_wiring.network import NetworkReader, subsidy_sat
from pool.admin_wiring.views import PoolViews
from pool.shares import best as books

if TYPE_CHECKING:
    from pool.config import Config
    from pool.money.service import MoneyService
    from pool.shares.ledger import Ledger

log = logging.getLogger("geostratum.admin")

EARNINGS_WINDOW = "h1"              # the account hashrate window earnings and odds rest on
WINDOW_SECONDS = {"m1": 60, "m5": 300, "m15": 900, "h1": 3600, "h6": 21_600, "h24": 86_400}
MAX_PAYOUT_ROWS = 50


def window_figure(windows: Any, name: str) -> tuple[float, float, float | None, int, bool]:
    """(hashrate, low, high, shares, warming up) of one window: a figure with bounds when the read
    side gives them; a bare number (no share count) has no known interval (low 0, high None)."""
    value = getattr(windows, name)
    if isinstance(value, int | float):
        return float(value), 0.0, None, 0, True
    return float(value.hashrate), float(value.low), value.high, int(value.shares), bool(value.warming_up)


def _share(found: books.BestShare | None) -> BestShare | None:
    return BestShare(difficulty=found.difficulty, found_at=found.at, worker=found.worker) if found else None


def best_shares(pair: books.BestPair | None, connection: float | None = None) -> BestShares:
    """The books' record as the API shows it; `connection`: the best on the live connections."""
    if pair is None:
        return BestShares(connection=connection)
    return BestShares(ever=_share(pair.ever), round=_share(pair.round), connection=connection)


class MinerReader:
    def __init__(self, config: Config, ledger: Ledger, views: PoolViews, network: NetworkReader,
                 money: MoneyService | None = None) -> None:
        self.config = config
        self.ledger = ledger
        self.money = money
        self.views = views
        self.network = network

    async def extras(self, account: str, detail: AccountDetail, host: str) -> MinerExtras:
        ledger = self.ledger
        network = self.config.chain.network
        out = MinerExtras(stratum_urls=self.stratum_urls(host), chain="main" if network == "mainnet" else network,
                          home_url=self.config.admin.public_home_url or "/")
        workers = [w.name for w in detail.workers]
        connection: dict[str, float] = {}
        for row in self.views.rows(await self.views.nodes()):
            if row.account == account and row.best_difficulty > 0:
                connection[row.worker] = max(connection.get(row.worker, 0.0), row.best_difficulty)
        try:
            found = await ledger.best.account(ledger.client, account, workers)
            out.best = AccountBest(account=best_shares(found.best),
                                   workers={name: best_shares(pair, connection.get(name))
                                            for name, pair in found.workers.items()})
        except (RedisError, OSError) as exc:
            log.debug("miner page without best shares: %s", exc)
        await self._payouts(account, out)
        try:
            net = await self.network.info()
        except Exception as exc:                # the node is down: no earnings figure, the rest stands
            log.debug("miner page without network figures: %s", exc)
            return out
        out.chain = net.chain
        hashrate, low, high, shares, warming = window_figure(detail.summary.hashrate, EARNINGS_WINDOW)
        payouts, chain = self.config.payouts, self.config.chain
        scheme = "solo" if chain.mode == "solo" else payouts.scheme
        fee_percent = chain.solo_fee_percent if scheme == "solo" else payouts.fee_percent   # SOLO: the coinbase's cut
        fees = net.recent_fees_sat
        average_fees = sum(fees) // len(fees) if fees else 0
        with_fees = scheme != "pps"             # PPS pays the subsidy only; FPPS, PPLNS and SOLO include fees
        reward = subsidy_sat(net.height + 1, self.network.halving_interval()) + (average_fees if with_fees else 0)
        window = WINDOW_SECONDS[EARNINGS_WINDOW]
        if net.difficulty > 0:
            out.earnings = earnings.earnings(scheme, hashrate, low, high, shares, window, net.difficulty, reward,
                                             fee_percent)
            out.earnings.warming_up = warming
            if scheme == "solo":
                out.solo = earnings.solo_odds(hashrate, low, high, window, net.difficulty)
        return out

    async def _payouts(self, account: str, out: MinerExtras) -> None:
        """Credits and payouts from the PostgreSQL books (SOLO keeps none: no rows; the amount paid so far
        is the account summary's paid_sat)."""
        money = self.money
        if money is None:
            return
        try:
            lines = await money.books.lines(account, MAX_PAYOUT_ROWS)
            out.payouts = [PayoutEntry(kind=line.kind, amount_msat=line.msat, at=line.created_at, ref=line.ref)
                           for line in lines]
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:   # the page shows the rest
            log.debug("miner page without payouts: %s", exc)

    async def pool_best(self) -> BestShares | None:
        ledger = self.ledger
        try:
            return best_shares(await ledger.best.pool(ledger.client))
        except (RedisError, OSError) as exc:
            log.debug("pool best share not read: %s", exc)
            return None

    def stratum_urls(self, host: str) -> list[str]:
        """How miners reach this pool: one URL per listening port (stratum+ssl:// for TLS ports), on
        admin.public_stratum_host, else the host the page was asked for."""
        host = self.config.admin.public_stratum_host or host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return [f"{'stratum+ssl' if getattr(port, 'tls', False) else 'stratum+tcp'}://{host}:{port.port}"
                for port in self.config.stratum.ports]
