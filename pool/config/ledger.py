"""[redis], [ledger] and [payouts] sections: the books of the pool."""

from __future__ import annotations

import msgspec

from pool.config.errors import ConfigError

REDIS_MODES = ("single", "sentinel", "cluster")
PAYOUT_SCHEMES = ("pplns", "pps", "fpps", "solo")


class RedisConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "single", "sentinel" or "cluster"
    mode: str = "single"
    # single: the server; cluster: any one node (more in `urls`); sentinel: unused (see `urls`).
    url: str = "redis://127.0.0.1:6379/0"
    # cluster: extra startup nodes; sentinel: the sentinels, e.g. ["redis://10.0.0.1:26379", ...]
    urls: list[str] = msgspec.field(default_factory=list)
    sentinel_service: str = "mymaster"
    # Password for the data nodes when it is not in the URL (sentinel mode needs it here).
    password: str = ""
    key_prefix: str = "gs"
    connect_timeout_s: float = 2.0
    socket_timeout_s: float = 5.0

    def validate(self) -> None:
        if self.mode not in REDIS_MODES:
            raise ConfigError("mode", f"must be one of {', '.join(REDIS_MODES)}, got {self.mode!r}")
        if self.mode == "sentinel" and not self.urls:
            raise ConfigError("urls", "sentinel mode needs at least one sentinel address")
        if not self.key_prefix or any(c in self.key_prefix for c in "{}: \t"):
            raise ConfigError("key_prefix", "must be non-empty without braces, colons or spaces")
        if self.connect_timeout_s <= 0:
            raise ConfigError("connect_timeout_s", "must be > 0")
        if self.socket_timeout_s <= 0:
            raise ConfigError("socket_timeout_s", "must be > 0")


class LedgerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # A batch is cut every flush_interval_ms or as soon as flush_max_shares are waiting. A cut folds
    # its shares on the event loop (~1.3 us each): 1000 bounds that pause near 1.3 ms while Redis keeps
    # up; when it falls behind, a cut takes all that waits, so batches still grow (bench_ledger: same
    # shares/s and round trips per share at 1000 as at 5000).
    flush_interval_ms: int = 100
    flush_max_shares: int = 1000
    # Upper bound of one batch (a cut takes all waiting shares, so batches grow under load).
    max_batch_shares: int = 50_000
    journal_dir: str = "var/journal"
    # fsync the journal once per batch; turning it off trades crash safety of the OS for speed.
    journal_fsync: bool = True
    journal_segment_bytes: int = 64 * 1024 * 1024
    # How long a batch's "applied" marker lives in Redis: a replay older than this could count twice.
    batch_marker_ttl_s: int = 14 * 86400
    # Worker/account keys are spread over this many hash tags (cluster slots).
    shards: int = 16
    fine_bucket_s: int = 10
    fine_retention_s: int = 2 * 3600
    coarse_bucket_s: int = 600
    # Hashrate buckets hold integer sums of difficulty x bucket_units. 1000 suits share difficulties >= 1
    # (mainnet; a whole network's 600 s bucket stays below 2^63); devnet/regtest CPU shares far below 1
    # need a finer unit (e.g. 1e9), or their hashrate rounds to 0.
    bucket_units: int = 1000
    coarse_retention_s: int = 8 * 86400
    # PPLNS slices: the share log is kept as per-account sums per slice of this many seconds.
    pplns_slice_s: int = 10
    # Wait between attempts while Redis is unreachable.
    redis_retry_ms: int = 500
    # While Redis is down, batches are cut this often (larger batches, fewer to replay).
    down_cut_interval_ms: int = 5000
    # Queued batches beyond this count keep only their journal position in memory.
    max_batches_in_memory: int = 1000
    # How often found blocks are followed on the node (confirmations).
    block_poll_interval_s: float = 30.0
    # Blocks stay watched for reorgs until this many confirmations.
    block_watch_confirmations: int = 200

    def validate(self) -> None:
        positive = ("flush_interval_ms", "flush_max_shares", "max_batch_shares", "journal_segment_bytes",
                    "batch_marker_ttl_s", "shards", "fine_bucket_s", "fine_retention_s", "coarse_bucket_s",
                    "coarse_retention_s", "pplns_slice_s", "redis_retry_ms", "down_cut_interval_ms",
                    "max_batches_in_memory", "block_watch_confirmations")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(name, f"must be > 0, got {getattr(self, name)}")
        if self.block_poll_interval_s <= 0:
            raise ConfigError("block_poll_interval_s", "must be > 0")
        if not self.journal_dir:
            raise ConfigError("journal_dir", "must not be empty")
        if self.max_batch_shares < self.flush_max_shares:
            raise ConfigError("max_batch_shares", "must be >= flush_max_shares")
        if self.shards > 1024:
            raise ConfigError("shards", f"must be <= 1024, got {self.shards}")
        if self.bucket_units < 1 or self.bucket_units > 10**12:
            raise ConfigError("bucket_units", f"must be 1..1e12, got {self.bucket_units}")
        if self.coarse_bucket_s % self.fine_bucket_s:
            raise ConfigError("coarse_bucket_s", "must be a multiple of fine_bucket_s")
        if self.fine_retention_s < 3600 + self.fine_bucket_s:
            raise ConfigError("fine_retention_s", "must cover the 1 h hashrate window (>= 3600 + fine_bucket_s)")
        if self.coarse_retention_s < 86400 + self.coarse_bucket_s:
            raise ConfigError("coarse_retention_s", "must cover the 24 h window (>= 86400 + coarse_bucket_s)")


class PayoutConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "pplns", "pps", "fpps" or "solo"
    scheme: str = "pplns"
    fee_percent: float = 1.0
    # PPLNS window N = pplns_factor x network difficulty (by difficulty sum).
    pplns_factor: float = 2.0
    # Slices are kept until they hold this many windows (so a late block still finds its window).
    pplns_keep_windows: float = 2.0
    maturity_confirmations: int = 100
    # Accounts whose balance reaches this are put in the next payout batch.
    threshold_sat: int = 1_000_000
    # FPPS fee component: fees / subsidy over this many recent blocks.
    fpps_fee_window_blocks: int = 144
    # Where the pool's own book-keeping entries go (fees, PPS block rewards, rounding dust).
    pool_account: str = "@pool"
    export_dir: str = "var/payouts"
    # Bitcoin Core wallet name for sendmany ("" = default wallet).
    wallet: str = ""
    sendmany_minconf: int = 1
    # A batch found "sending" with no wallet transaction carrying its key is sent again only when its last
    # attempt is older than this (a slow sendmany may still be completing in the wallet).
    resend_after_s: float = 60.0
    # Accept usernames whose account part is not a payout address (accounts mapped to addresses
    # elsewhere). Off: a typo'd address is refused at authorize instead of earning an unpayable balance.
    # The devnet always accepts names.
    named_accounts: bool = False

    def validate(self) -> None:
        if self.scheme not in PAYOUT_SCHEMES:
            raise ConfigError("scheme", f"must be one of {', '.join(PAYOUT_SCHEMES)}, got {self.scheme!r}")
        if not 0 <= self.fee_percent < 100:
            raise ConfigError("fee_percent", f"must be in [0, 100), got {self.fee_percent}")
        if self.pplns_factor <= 0:
            raise ConfigError("pplns_factor", "must be > 0")
        if self.pplns_keep_windows < 1:
            raise ConfigError("pplns_keep_windows", "must be >= 1")
        if self.maturity_confirmations < 1:
            raise ConfigError("maturity_confirmations", "must be >= 1")
        if self.threshold_sat < 1:
            raise ConfigError("threshold_sat", "must be >= 1")
        if self.resend_after_s < 0:
            raise ConfigError("resend_after_s", f"must be >= 0, got {self.resend_after_s}")
        if self.fpps_fee_window_blocks < 1:
            raise ConfigError("fpps_fee_window_blocks", "must be >= 1")
        if not self.pool_account.startswith("@"):
            raise ConfigError("pool_account", "must start with '@' so it can never be a miner's account")
