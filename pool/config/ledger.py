"""[redis], [ledger] and [payouts] sections: the books of the pool."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from pool.config.constraints import NonNegative, Positive, PositiveInt, check_fields
from pool.config.errors import ConfigError

RedisMode = Literal["single", "sentinel", "cluster"]
PayoutScheme = Literal["pplns", "pps", "fpps", "solo"]


class RedisConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "single", "sentinel" or "cluster"
    mode: RedisMode = "single"
    # single: the server; cluster: any one node (more in `urls`); sentinel: unused (see `urls`).
    url: str = "redis://127.0.0.1:6379/0"
    # cluster: extra startup nodes; sentinel: the sentinels, e.g. ["redis://10.0.0.1:26379", ...]
    urls: list[str] = msgspec.field(default_factory=list)
    sentinel_service: str = "mymaster"
    # Password for the data nodes when it is not in the URL (sentinel mode needs it here).
    password: str = ""
    key_prefix: str = "gs"
    connect_timeout_s: Positive = 2.0
    socket_timeout_s: Positive = 5.0

    def validate(self) -> None:
        check_fields(self)
        if self.mode == "sentinel" and not self.urls:
            raise ConfigError("urls", "sentinel mode needs at least one sentinel address")
        if not self.key_prefix or any(c in self.key_prefix for c in "{}: \t"):
            raise ConfigError("key_prefix", "must be non-empty without braces, colons or spaces")


class LedgerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # A batch is cut every flush_interval_ms or as soon as flush_max_shares are waiting. A cut folds
    # its shares on the event loop (~1.3 us each): 1000 bounds that pause near 1.3 ms while Redis keeps
    # up; when it falls behind, a cut takes all that waits, so batches still grow (bench_ledger: same
    # shares/s and round trips per share at 1000 as at 5000).
    flush_interval_ms: PositiveInt = 100
    flush_max_shares: PositiveInt = 1000
    # Upper bound of one batch (a cut takes all waiting shares, so batches grow under load).
    max_batch_shares: PositiveInt = 50_000
    journal_dir: str = "var/journal"
    # fsync the journal once per batch; turning it off trades crash safety of the OS for speed.
    journal_fsync: bool = True
    journal_segment_bytes: PositiveInt = 64 * 1024 * 1024
    # How long a batch's "applied" marker lives in Redis: a replay older than this could count twice.
    batch_marker_ttl_s: PositiveInt = 14 * 86400
    # Worker/account keys are spread over this many hash tags (cluster slots).
    shards: Annotated[int, Meta(ge=1, le=1024)] = 16
    fine_bucket_s: PositiveInt = 10
    fine_retention_s: PositiveInt = 2 * 3600
    coarse_bucket_s: PositiveInt = 600
    # Hashrate buckets hold integer sums of difficulty x bucket_units. 1000 suits share difficulties >= 1
    # (mainnet; a whole network's 600 s bucket stays below 2^63); devnet/regtest CPU shares far below 1
    # need a finer unit (e.g. 1e9), or their hashrate rounds to 0.
    bucket_units: Annotated[int, Meta(ge=1, le=10**12)] = 1000
    coarse_retention_s: PositiveInt = 8 * 86400
    # A hashrate figure built on fewer shares than this is shown as "warming up", not as a number
    # (its 95 % interval is wider than about +-36 % below 30 shares).
    warming_up_shares: PositiveInt = 30
    # PPLNS slices: the share log is kept as per-account sums per slice of this many seconds.
    pplns_slice_s: PositiveInt = 10
    # Wait between attempts while Redis is unreachable.
    redis_retry_ms: PositiveInt = 500
    # While Redis is down, batches are cut this often (larger batches, fewer to replay).
    down_cut_interval_ms: PositiveInt = 5000
    # Queued batches beyond this count keep only their journal position in memory.
    max_batches_in_memory: PositiveInt = 1000
    # After Redis was unreachable, the batches applied in the last this many seconds (at most this many
    # bytes of them) are applied again: Redis skips what it kept and takes what a failover to a lagging
    # replica or an fsync-everysec restart lost (pool/shares/recent_batches.py). 0 turns it off.
    replay_after_outage_s: NonNegative = 30.0
    replay_after_outage_max_bytes: PositiveInt = 32 * 1024 * 1024
    # How often found blocks are followed on the node (confirmations).
    block_poll_interval_s: Positive = 30.0
    # Blocks stay watched for reorgs until this many confirmations.
    block_watch_confirmations: PositiveInt = 200
    # Block candidates no node took (refused, or the submission failed), kept in Redis for the blocks
    # list and the alerts of every process: the newest this many.
    max_refused_blocks: PositiveInt = 1000

    def validate(self) -> None:
        check_fields(self)
        if not self.journal_dir:
            raise ConfigError("journal_dir", "must not be empty")
        if self.max_batch_shares < self.flush_max_shares:
            raise ConfigError("max_batch_shares", "must be >= flush_max_shares")
        if 60 % self.fine_bucket_s:
            raise ConfigError("fine_bucket_s", "must divide 60 (the region windows read minutes on the same edges)")
        if self.coarse_bucket_s % self.fine_bucket_s:
            raise ConfigError("coarse_bucket_s", "must be a multiple of fine_bucket_s")
        if self.fine_retention_s < 3600 + self.fine_bucket_s:
            raise ConfigError("fine_retention_s", "must cover the 1 h hashrate window (>= 3600 + fine_bucket_s)")
        if self.coarse_retention_s < 86400 + self.coarse_bucket_s:
            raise ConfigError("coarse_retention_s", "must cover the 24 h window (>= 86400 + coarse_bucket_s)")


class PayoutConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "pplns", "pps", "fpps" or "solo". In pool mode each keeps balances, in PostgreSQL only: money.dsn
    # required (SOLO may run without it on devnet/regtest; chain.mode = "solo" owes nothing).
    scheme: PayoutScheme = "pplns"
    fee_percent: Annotated[float, Meta(ge=0, lt=100)] = 1.0
    # PPLNS window N = pplns_factor x network difficulty (by difficulty sum).
    pplns_factor: Positive = 2.0
    # Slices are kept until they hold this many windows (so a late block still finds its window).
    pplns_keep_windows: Annotated[float, Meta(ge=1)] = 2.0
    maturity_confirmations: PositiveInt = 100
    # Accounts whose balance reaches this are put in the next payout batch.
    threshold_sat: PositiveInt = 1_000_000
    # FPPS fee component: fees / subsidy over this many recent blocks.
    fpps_fee_window_blocks: PositiveInt = 144
    # Where the pool's own book-keeping entries go (fees, PPS block rewards, rounding dust).
    pool_account: str = "@pool"
    export_dir: str = "var/payouts"
    # Bitcoin Core wallet name for sendmany ("" = default wallet).
    wallet: str = ""
    sendmany_minconf: int = 1
    # A batch found "sending" with no wallet transaction carrying its key is sent again only when its last
    # attempt is older than this (a slow sendmany may still be completing in the wallet).
    resend_after_s: NonNegative = 60.0
    # `geostratum payouts confirm` marks a sent batch confirmed once its transaction has this many.
    payout_confirmations: PositiveInt = 6
    # Accept usernames whose account part is not a payout address (accounts mapped to addresses
    # elsewhere). Off: a typo'd address is refused at authorize instead of earning an unpayable balance.
    # The devnet always accepts names.
    named_accounts: bool = False

    def validate(self) -> None:
        check_fields(self)
        if not self.pool_account.startswith("@"):
            raise ConfigError("pool_account", "must start with '@' so it can never be a miner's account")
