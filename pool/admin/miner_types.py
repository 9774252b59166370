"""What a miner's own page shows beyond the account's workers: best shares, earnings, payouts and, for
solo accounts, the odds of a block. Plain data; pool.admin_wiring.miner fills it from the pool."""

from __future__ import annotations

from typing import Protocol

import msgspec

from pool.admin.interfaces import AccountDetail, BestShares, HashrateHistory


class AccountBest(msgspec.Struct, kw_only=True):
    account: BestShares
    workers: dict[str, BestShares]      # full worker name -> its bests


class Estimate(msgspec.Struct, kw_only=True):
    """A figure derived from a hashrate estimate, with the 95 % range carried over from its bounds."""

    value: float
    low: float
    high: float | None                  # None: no share yet, so no upper bound


class Earnings(msgspec.Struct, kw_only=True):
    """Expected earnings at the account's hashrate over `window_seconds`, under the pool's scheme."""

    scheme: str                         # "pplns", "pps", "fpps", "solo"
    window_seconds: int                 # the hashrate window the estimate rests on
    hashrate: float                     # H/s over that window
    hashrate_low: float
    hashrate_high: float | None
    shares: int                         # shares the hashrate's interval rests on
    warming_up: bool = False            # the hashrate rests on fewer shares than the pool's minimum
    network_difficulty: float
    reward_sat: int                     # subsidy (+ recent average fees under FPPS/PPLNS/SOLO)
    fee_percent: float
    sat_per_day: Estimate               # expected value; PPLNS/SOLO pay it on average, with luck
    basis: str                          # the method, in words


class SoloOdds(msgspec.Struct, kw_only=True):
    """Solo mining: blocks arrive as a Poisson process at hashrate / (difficulty x 2^32) per second."""

    window_seconds: int
    expected_seconds_to_block: Estimate     # 1 / rate (low/high swap with the hashrate's bounds)
    chance_per_day: Estimate                # 1 - exp(-rate x 86400)


class PayoutEntry(msgspec.Struct, kw_only=True):
    kind: str                           # block_credit, pps, fpps, payout, reversal, payout_cancel
    amount_msat: int                    # signed; credits positive, payouts negative (the books keep msat)
    at: float
    ref: str                            # block hash, batch id or payout key


class MinerWorker(msgspec.Struct, kw_only=True):
    """What the miner page adds to a worker's summary (never its IP address)."""

    history: HashrateHistory
    rejected_by_reason: dict[str, int]
    connected_since: float | None = None   # its oldest open connection; None when offline
    ports: list[int] = msgspec.field(default_factory=list)


class MinerExtras(msgspec.Struct, kw_only=True):
    workers: dict[str, MinerWorker] = msgspec.field(default_factory=dict)   # the charted workers
    best: AccountBest | None = None
    earnings: Earnings | None = None
    solo: SoloOdds | None = None
    payouts: list[PayoutEntry] = msgspec.field(default_factory=list)
    stratum_urls: list[str] = msgspec.field(default_factory=list)   # stratum+tcp:// and stratum+ssl://
    chain: str = ""                     # "main", "test", ..., "devnet": amounts are test coins off main
    home_url: str = "/"                 # the pool's home page (admin.public_home_url), for the page's back link


class MinerAccount(AccountDetail, kw_only=True):
    """GET /api/v1/accounts/{account}: the account, its workers and history, and the miner page's extras."""

    miner: MinerExtras


class MinerSource(Protocol):
    async def extras(self, account: str, detail: AccountDetail, host: str) -> MinerExtras: ...

    async def pool_best(self) -> BestShares | None:
        """The pool's best share, all time and this round (None when the books cannot be read)."""
        ...
