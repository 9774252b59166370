"""Structs only the admin API produces (the provider-facing ones live in interfaces.py)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from pool.admin.economics import AdjustmentProjection
from pool.admin.interfaces import FreeText, HashrateWindows, RegionRate
from pool.admin.miner_types import BestShares


class ErrorBody(msgspec.Struct, kw_only=True):
    status: int
    error: str                          # short machine-readable code, e.g. "bad_parameter"
    reason: str                         # for a human; never a traceback


class PoolSection(msgspec.Struct, kw_only=True):
    hashrate: HashrateWindows
    connections: int
    workers: int
    accounts: int
    started_at: float


class SharesSection(msgspec.Struct, kw_only=True):
    window_seconds: int
    accepted: int
    accepted_difficulty: float
    rejected_total: int
    rejected_by_reason: dict[str, int]
    stale_rate: float                   # stale / (accepted + rejected) over rejected_seconds, 0..1
    observed_seconds: float = 0.0       # seconds of the window the accepted count covers (ledger, Redis)
    rejected_seconds: float = 0.0       # seconds the rejects were counted (in memory, since the process started)


class BlocksSection(msgspec.Struct, kw_only=True):
    found: int
    last_found_at: float | None


class RoundSection(msgspec.Struct, kw_only=True):
    """The round in progress (shares since the pool's last block)."""

    opened_at: float | None
    shares: int
    accepted_difficulty: float
    # accepted difficulty / network difficulty: 1.0 is one block's expected work (100 %), the same
    # convention as a found block's effort; None without a network difficulty.
    effort: float | None


class NetworkSection(msgspec.Struct, kw_only=True):
    chain: str
    height: int
    difficulty: float
    # None (with `note` saying why) where difficulty means nothing: devnet, regtest, a test network's
    # minimum-difficulty blocks.
    hashrate: float | None              # implied by the tip's difficulty at 600 s per block
    hashrate_recent: float | None       # the tip's difficulty over the recent mean block interval
    # Bitcoin Core's getnetworkhashps over the recent blocks that exist: their work / their time span.
    hashrate_from_blocks: float | None
    blocks_counted: int                 # blocks behind hashrate_from_blocks
    note: str = ""


class RevenueSection(msgspec.Struct, kw_only=True):
    subsidy_btc: float
    average_fees_btc: float
    fee_blocks: int                     # how many recent blocks the fee average covers
    hashprice_btc_per_ph_day: float | None    # None where the difficulty says nothing (network.note)
    btc_usd_price: float | None
    price_source: str | None            # "config", "fed" or None
    price_updated_at: float | None
    hashprice_usd_per_ph_day: float | None


class PoolShareSection(msgspec.Struct, kw_only=True):
    of_network_hashrate: float | None   # 24 h pool hashrate / difficulty-implied network hashrate (None: no meaning)
    of_recent_blocks: float             # pool blocks / the last `recent_blocks_window` blocks
    recent_blocks_window: int           # min(configured window, blocks after genesis)
    recent_blocks_found: int


class PoolOverview(msgspec.Struct, kw_only=True):
    generated_at: float
    pool: PoolSection
    shares: SharesSection
    blocks: BlocksSection
    round: RoundSection
    network: NetworkSection
    next_adjustment: AdjustmentProjection | None
    revenue: RevenueSection
    pool_share: PoolShareSection
    best_share: BestShares | None = None    # the pool's best share (what its hash reached), ever and this round


class RegionsResponse(msgspec.Struct, kw_only=True):
    level: str                          # "country" or "subdivision"
    window_seconds: int
    total_hashrate: float
    database: str
    database_build: str
    attribution: str
    folded_regions: int                 # regions folded into "Other" (anonymous view only)
    items: list[RegionRate]
    database_age_days: float | None = None     # since the location database was built
    max_database_age_days: int = 45             # geo.max_database_age_days
    database_stale: bool = False                # older than that: IP blocks have moved since


class PriceUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    btc_usd: Annotated[float, msgspec.Meta(gt=0, lt=1e9)]


class PriceState(msgspec.Struct, kw_only=True):
    btc_usd_price: float | None
    price_source: str | None
    price_updated_at: float | None


class ActionResult(msgspec.Struct, kw_only=True):
    worker: str
    connections: int                    # how many connections the action reached


class KickRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: FreeText = ""


class Removed(msgspec.Struct, kw_only=True):
    target: str
    removed: bool


class DashboardSettings(msgspec.Struct, kw_only=True):
    refresh_seconds: float
    anonymous: bool                     # dashboard data readable without a token
