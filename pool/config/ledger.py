"""[redis], [ledger] and [payouts] sections: the books of the pool."""

from __future__ import annotations

import msgspec


class RedisConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "single", "sentinel" or "cluster"
    mode: str = "single"
    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "gs"


class LedgerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    flush_interval_ms: int = 100
    flush_max_shares: int = 5000
    journal_dir: str = "var/journal"


class PayoutConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "pplns", "pps", "fpps" or "solo"
    scheme: str = "pplns"
    fee_percent: float = 1.0
