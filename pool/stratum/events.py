"""What a session emits besides bytes: the one typed union the server dispatches on.

A session (sans-IO) appends these to ``Session.events``; the asyncio server hands each to its
consumer: an accepted share to the ledger and rollups, a block candidate to every node, a resume
look-up to the cluster's resume directory.
"""

from __future__ import annotations

import msgspec

from pool.chain.types import BlockCandidate
from pool.stratum.resume import ResumeLookup

__all__ = ["BlockCandidate", "ResumeLookup", "SessionEvent", "ShareRecord"]


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
    authorized_at: float = 0.0  # when the worker authorized on this connection (0: unknown): where the
                                # books start observing it (pool.shares.hashrate), durable with the share


SessionEvent = ShareRecord | BlockCandidate | ResumeLookup
