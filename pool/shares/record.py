"""The accepted share as every consumer (ledger, geo rollups, metrics) sees it."""

from __future__ import annotations

import msgspec


class ShareRecord(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """One accepted share. No IP address: the region was tagged at connect time."""

    timestamp: float          # unix seconds when accepted
    account: str              # payout address or account name (the part before the first '.')
    worker: str               # full worker name as authorized
    difficulty: float         # credited difficulty: the one in force when the job was sent
    share_difficulty: float   # what the hash actually reached
    height: int               # height of the block the job was building
    country: str = "ZZ"       # ISO 3166-1 alpha-2; "ZZ" unknown, "XP" private/reserved
    subdivision: str = ""     # ISO 3166-2 subdivision code or name, "" when unknown
    hosting: bool = False     # source network is a hosting/VPN/anonymous network
    farm_proxy: bool = False  # the connection carries many workers (a farm proxy)
    firmware: str = "unknown"  # hardware/firmware family from the subscribe user agent
    node: str = ""            # pool node that accepted it
    block_hash: str = ""      # display-order hash when this share solved a block


class RedisOp(msgspec.Struct, frozen=True, array_like=True):
    """One Redis write a batch applies, as data, so the ledger can group it by hash slot,
    journal it and apply each group exactly once."""

    command: str              # e.g. "HINCRBYFLOAT", "INCRBYFLOAT", "PFADD", "ZADD", "EXPIRE"
    key: str
    args: tuple[str | int | float, ...] = ()
