"""What one pool process publishes for the others every few seconds (the admin API in worker 0
merges them): its components' own snapshots, its connected workers and its bans. msgpack on the
wire (pool.bus.link), so a field added to a component's snapshot travels with it."""

from __future__ import annotations

import msgspec

from pool.shares.ledger import LedgerSnapshot
from pool.stratum.stats import StratumSnapshot


class ConnRow(msgspec.Struct, array_like=True):
    """One authorized worker on one connection."""

    worker: str
    account: str
    port: int
    address: str
    connected_at: float
    difficulty: float
    user_agent: str
    firmware: str
    country: str
    subdivision: str
    accepted: int
    accepted_difficulty: float
    rejected: dict[str, int]
    last_share_at: float
    best_difficulty: float = 0.0        # the hardest accepted share on this connection


class BanRow(msgspec.Struct, array_like=True):
    target: str
    reason: str
    created_at: float
    until: float                        # 0 = until removed


class NodeSnapshot(msgspec.Struct, kw_only=True):
    """What one process publishes every few seconds: its components' own snapshots, and the rows
    of its connected workers and its bans for the admin views."""

    node: str
    worker_index: int
    at: float
    started_at: float
    stratum: StratumSnapshot
    ledger: LedgerSnapshot
    rows: list[ConnRow]
    bans: list[BanRow]
