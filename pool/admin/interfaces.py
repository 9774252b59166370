"""What the admin server needs from the rest of the pool, and the plain data that flows through it.

pool/app.py implements these Protocols over the real stratum server, chain, ledger and geo objects;
the admin package never imports them. Every figure is in base units: hashrate in hashes per second,
times in unix seconds, amounts in satoshis, difficulty as Bitcoin difficulty (diff-1 = 2^32 hashes).
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

import msgspec
from msgspec import UNSET, Meta, UnsetType

# Plain types from lower floors: the map view, the figure types of the books' one read side, and
# the components' snapshots /metrics renders.
from pool.admin.notify import TargetStats
from pool.chain.jobs import ChainSnapshot
from pool.cluster.snapshot import NodeSnapshot
from pool.geo.locator import GeoSnapshot
from pool.geo.mapview import MapView
from pool.money.books import BooksSnapshot
from pool.shares.hashrate import HashrateFigure, HashrateHistory, HashratePoint, HashrateWindows, empty_figure
from pool.shares.ranking import RankKeeperSnapshot
from pool.stratum.stats import HistogramSnapshot

__all__ = ["HashrateFigure", "HashrateHistory", "HashratePoint", "HashrateWindows", "HistogramSnapshot"]

DBIP_ATTRIBUTION = "IP geolocation by DB-IP (https://db-ip.com), licensed under CC BY 4.0"

# Constraints on what API clients send: msgspec enforces them when decoding a body and the
# OpenAPI document states the same ones (it is generated from these Structs).
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(\.{_OCTET}){{3}}(/(3[0-2]|[12]?[0-9]))?"
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6_FORMS = (
    rf"({_H}:){{7}}{_H}", rf"({_H}:){{1,7}}:", rf"({_H}:){{1,6}}:{_H}", rf"({_H}:){{1,5}}(:{_H}){{1,2}}",
    rf"({_H}:){{1,4}}(:{_H}){{1,3}}", rf"({_H}:){{1,3}}(:{_H}){{1,4}}", rf"({_H}:){{1,2}}(:{_H}){{1,5}}",
    rf"{_H}:(:{_H}){{1,6}}", rf":((:{_H}){{1,7}}|:)",
)
_IPV6 = "(" + "|".join(_IPV6_FORMS) + r")(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?"
BAN_TARGET_PATTERN = rf"^({_IPV4}|{_IPV6})$"
BanTarget = Annotated[str, Meta(pattern=BAN_TARGET_PATTERN, max_length=50, description="IP address or CIDR network")]
FreeText = Annotated[str, Meta(max_length=200, pattern=r"^[^\u0000-\u001f\u007f]*$")]
HostName = Annotated[str, Meta(max_length=253, pattern=r"^[A-Za-z0-9.:\-\[\]]*$")]
Difficulty = Annotated[float, Meta(gt=0, le=1e18)]


class Rejected(Exception):
    """A provider refusing a request for a reason the caller can act on, answered with `status`
    (400, 404 or 409; anything else becomes 409).

    The reason is shown to the API client verbatim: it must not carry internals.
    """

    def __init__(self, reason: str, status: int = 409) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# ---------------------------------------------------------------------------------------------
# Pool state
# ---------------------------------------------------------------------------------------------


# Stratum reject keys -> the admin API's (and /metrics') reason names.
REJECT_NAMES = {
    "stale": "stale", "job_not_found": "unknown-job", "duplicate": "duplicate",
    "low_difficulty": "low-difficulty", "unauthorized": "unauthorized", "not_subscribed": "unauthorized",
    "ntime_out_of_range": "bad-time", "bad_ntime": "bad-time", "bad_extranonce2": "invalid",
    "bad_nonce": "invalid", "bad_version": "invalid", "malformed": "invalid", "rate_limited": "rate-limited",
}


def reject_name(key: str) -> str:
    return REJECT_NAMES.get(key) or key.replace("_", "-")


def reject_names(counts: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, count in counts.items():
        name = reject_name(key)
        out[name] = out.get(name, 0) + count
    return out


class ShareStats(msgspec.Struct, kw_only=True):
    """Share verdicts over the last `window_seconds`.

    Reject reasons are short names: "stale", "duplicate", "low-difficulty", "unknown-job",
    "bad-time", "invalid", "unauthorized"; "stale" is what the stale rate is computed from.
    """

    window_seconds: int
    accepted: int = 0
    accepted_difficulty: float = 0.0
    rejected: dict[str, int] = msgspec.field(default_factory=dict)
    # Accepted shares are the ledger's (Redis: the pool's hashrate window, the same count behind the
    # 1 h figure, through restarts); `observed_seconds` of the window held them. Rejects are counted
    # only in the processes' memory: over `rejected_seconds` (since start, at most the window), beside
    # `judged_accepted` accepted shares of that same span for the stale rate.
    observed_seconds: float = 0.0
    rejected_seconds: float = 0.0
    judged_accepted: int | None = None  # None: `accepted` covers the same span as the rejects


class PoolFigures(msgspec.Struct, kw_only=True):
    hashrate: HashrateWindows
    connections: int
    workers: int
    accounts: int
    shares: ShareStats
    blocks_found: int
    last_block_found_at: float | None = None
    started_at: float = 0.0
    # The current round (shares since the pool's last block): when it opened, its accepted shares and
    # difficulty (what its effort is computed from).
    round_opened_at: float | None = None
    round_shares: int = 0
    round_difficulty: float = 0.0


class NetworkInfo(msgspec.Struct, kw_only=True):
    """The chain as the pool's node sees it."""

    chain: str                          # "main", "test", "testnet4", "signet", "regtest", "devnet"
    height: int                         # tip height
    difficulty: float
    tip_time: int                       # tip block header time
    # Header time of the first block of the current 2016-block period (height - height % 2016);
    # None when unknown.
    period_start_time: int | None = None
    # Header times of the most recent blocks, oldest first (fallback for the block interval).
    recent_block_times: list[int] = msgspec.field(default_factory=list)
    # Difficulties of the same blocks, oldest first (the chain's own hashrate: work over their span).
    recent_block_difficulties: list[float] = msgspec.field(default_factory=list)
    # Total fees of the most recent blocks, satoshis (any order).
    recent_fees_sat: list[int] = msgspec.field(default_factory=list)
    # False on chains that never retarget (regtest, devnet).
    retargets: bool = True


SortKey = Literal["hashrate", "name", "last_share"]


class ListQuery(msgspec.Struct, kw_only=True):
    """A page of workers or accounts. `search` is a case-insensitive substring of the name."""

    search: str = ""
    account: str = ""                   # workers only: restrict to one account
    sort: SortKey = "hashrate"
    descending: bool = True
    limit: int = 50
    offset: int = 0


class BestShare(msgspec.Struct, kw_only=True):
    difficulty: float                   # what the share's hash reached (diff-1 / hash)
    found_at: float
    worker: str


class BestShares(msgspec.Struct, kw_only=True):
    """Best share difficulty (what a share's hash reached: diff-1 target / hash, as ckpool's bestshare)
    all time, in the current round (since the pool's last block) and, for a worker, on its live
    connections (since they connected; null when offline)."""

    ever: BestShare | None = None
    round: BestShare | None = None
    connection: float | None = None     # workers only: highest over its open connections


class WorkerSummary(msgspec.Struct, kw_only=True):
    name: str
    account: str
    connections: int
    hashrate: HashrateWindows
    difficulty: float                   # current share difficulty (highest of its connections)
    # Shares counted by the books (Redis) since `counted_since`, online or offline; when the books do not
    # answer, those of the live connections (since they connected) and `counted_since` is None.
    accepted: int
    rejected: int
    counted_since: float | None = None
    last_share_at: float | None = None
    country: str = "ZZ"
    subdivision: str = ""
    firmware: str = "unknown"
    best: BestShares | None = None      # None: the best-share books (Redis) did not answer


class ConnectionInfo(msgspec.Struct, kw_only=True):
    port: int
    address: str                        # remote address (after PROXY protocol), operator eyes only
    connected_at: float
    difficulty: float
    user_agent: str = ""
    country: str = "ZZ"
    subdivision: str = ""


class WorkerDetail(msgspec.Struct, kw_only=True):
    summary: WorkerSummary
    connections: list[ConnectionInfo]
    rejected_by_reason: dict[str, int]  # over the same span as summary.rejected
    history: HashrateHistory


class WorkerPage(msgspec.Struct, kw_only=True):
    total: int
    items: list[WorkerSummary]


class AccountSummary(msgspec.Struct, kw_only=True):
    account: str
    workers: int
    hashrate: HashrateWindows
    accepted: int                       # all time (the books)
    rejected: int                       # counted by the books since `rejected_since` (None: live connections')
    rejected_since: float | None = None
    last_share_at: float | None = None
    # Whole satoshis from the payout books: 0 when none yet; None when the pool keeps no books (chain.mode
    # = "solo": the coinbase pays the finder) or they did not answer.
    balance_sat: int | None = None      # unpaid balance
    paid_sat: int | None = None         # debited into payout batches so far, net of cancelled ones


class AccountDetail(msgspec.Struct, kw_only=True):
    summary: AccountSummary
    workers: list[WorkerSummary]
    history: HashrateHistory


class AccountPage(msgspec.Struct, kw_only=True):
    total: int
    items: list[AccountSummary]


BlockStatus = Literal["submitted", "pending", "confirmed", "orphaned", "rejected"]


class BlockQuery(msgspec.Struct, kw_only=True):
    """Blocks found by the pool, newest first, with min_height <= height < before_height."""

    limit: int = 50
    before_height: int | None = None
    min_height: int = 0


class BlockInfo(msgspec.Struct, kw_only=True):
    height: int
    hash: str                           # display order hex
    found_at: float
    worker: str
    account: str
    status: BlockStatus
    reward_sat: int                     # coinbase value (subsidy + fees)
    fees_sat: int = 0
    confirmations: int = 0
    network_difficulty: float = 0.0
    effort: float | None = None         # round shares / network difficulty
    reason: str = ""                    # rejected: the node's word ("bad-txnmrklroot") or why it was never submitted


class RegionRate(msgspec.Struct, kw_only=True):
    country: str                        # ISO 3166-1 alpha-2; "ZZ" unknown, "XP" private, "XX" other
    country_name: str
    subdivision: str                    # "" for the whole country; the exports' and the map's spelling
    hashrate: float                     # H/s over the seconds the region was observed in the window
    miners: int                         # distinct miners seen in the window
    share: float = 0.0                  # of the pool's hashrate, 0..1
    shares: int = 0                     # accepted shares counted
    low: float = 0.0                    # 95 % bounds from the share count (Poisson)
    high: float | None = None
    covered_seconds: float = 0.0        # the pool's seconds observed in the window (every region's divisor)
    warming_up: bool = True             # fewer shares than the pool's warming_up_shares
    subdivision_code: str | None = None  # ISO 3166-2 when known (e.g. "US-TX"), as in the exports


class RegionsView(msgspec.Struct, kw_only=True):
    """Live hashrate by region, finest level (country + subdivision) from the provider."""

    window_seconds: int
    database: str                       # e.g. "DB-IP City Lite"
    database_build: str                 # build date of the .mmdb, YYYY-MM-DD
    attribution: str                    # licence notice shown wherever the data is shown
    items: list[RegionRate]
    # Days since the location database was built, and geo.max_database_age_days: older is stale.
    database_age_days: float | None = None
    max_database_age_days: int = 45
    # Distinct miners per whole country (the union over its subdivisions), when the provider can count
    # it; otherwise the country level sums its subdivisions' counts (an upper bound).
    country_miners: dict[str, int] = msgspec.field(default_factory=dict)
    warming_up_shares: int = 30         # a figure on fewer shares is "warming up"


class ComponentHealth(msgspec.Struct, kw_only=True):
    name: str                           # "redis", "node:<name>", "template", "journal", ...
    ok: bool
    detail: str = ""


class HealthStatus(msgspec.Struct, kw_only=True):
    ok: bool
    components: list[ComponentHealth]


class PoolState(Protocol):
    """Read-only view of the running pool."""

    async def figures(self) -> PoolFigures: ...

    async def network(self) -> NetworkInfo: ...

    async def hashrate_history(self, window_seconds: int) -> HashrateHistory: ...

    async def workers(self, query: ListQuery) -> WorkerPage: ...

    async def worker(self, name: str, history_seconds: int) -> WorkerDetail | None: ...

    async def accounts(self, query: ListQuery) -> AccountPage: ...

    async def account(self, name: str, history_seconds: int) -> AccountDetail | None: ...

    async def blocks(self, query: BlockQuery) -> list[BlockInfo]: ...

    async def regions(self, window_seconds: int) -> RegionsView: ...

    async def health(self) -> HealthStatus: ...


# ---------------------------------------------------------------------------------------------
# Control
# ---------------------------------------------------------------------------------------------


class BanRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    target: BanTarget                   # normalised by the admin API (host bits cleared)
    duration_seconds: Annotated[int, Meta(ge=1, le=315_360_000)] | None = None  # None: until removed
    reason: FreeText = ""


class BanEntry(msgspec.Struct, kw_only=True):
    target: str
    reason: str
    created_at: float
    expires_at: float | None = None
    source: Literal["admin", "auto"] = "admin"


class ReconnectRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """client.reconnect parameters; empty host / zero port mean "this pool, same port"."""

    host: HostName = ""
    port: Annotated[int, Meta(ge=0, le=65535)] = 0
    wait_seconds: Annotated[int, Meta(ge=0, le=3600)] = 0


class PortDifficulty(msgspec.Struct, kw_only=True):
    port: int
    start_difficulty: float
    min_difficulty: float
    max_difficulty: float
    connections: int = 0


class PortDifficultyUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the fields given change; new connections get them, live ones are clamped by vardiff."""

    start_difficulty: Difficulty | UnsetType = UNSET
    min_difficulty: Difficulty | UnsetType = UNSET
    max_difficulty: Difficulty | UnsetType = UNSET


class ReloadResult(msgspec.Struct, kw_only=True):
    ok: bool
    applied: list[str] = msgspec.field(default_factory=list)           # keys now in force
    requires_restart: list[str] = msgspec.field(default_factory=list)  # keys changed but not applied
    error: str = ""                     # ConfigError text ("key: reason") when ok is False


class PoolControl(Protocol):
    """Actions on the running pool. Each returns what changed; none drops unrelated miners."""

    async def bans(self) -> list[BanEntry]: ...

    async def add_ban(self, ban: BanRequest) -> BanEntry: ...

    async def remove_ban(self, target: str) -> bool: ...

    async def kick(self, worker: str, reason: str) -> int:
        """Close every connection of the worker; the number closed (0: not connected)."""
        ...

    async def reconnect(self, worker: str, request: ReconnectRequest) -> int:
        """Send client.reconnect to every connection of the worker; the number asked."""
        ...

    async def port_difficulties(self) -> list[PortDifficulty]: ...

    async def set_port_difficulty(self, port: int, update: PortDifficultyUpdate) -> PortDifficulty | None:
        """The new settings, or None when no such port is listening."""
        ...

    async def reload_config(self) -> ReloadResult: ...


# ---------------------------------------------------------------------------------------------
# Research exports
# ---------------------------------------------------------------------------------------------


class ExportKind(msgspec.Struct, kw_only=True):
    name: str                           # e.g. "ccaf-countries", "regions"
    description: str
    formats: list[str]                  # e.g. ["csv"], ["csv", "json"], ["svg"]
    periods: list[str]                  # e.g. ["daily", "weekly", "monthly"]


class ExportProvider(Protocol):
    def kinds(self) -> list[ExportKind]: ...

    async def export(self, kind: str, period: str, start: str, end: str, fmt: str) -> tuple[bytes, str]:
        """(body, content type) for the whole periods touching [start, end] (YYYY-MM-DD, inclusive).

        The admin API validates kind, period, format and dates against kinds() first;
        raise Rejected(reason, 404) when there is no data for the range.
        """
        ...

    async def map_view(self, period: str, day: str | None) -> MapView:
        """The map's cells for the `period` holding `day` (YYYY-MM-DD; None: today, UTC)."""
        ...


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


class PortRate(msgspec.Struct, kw_only=True):
    port: int
    hashrate: float                     # the pool's 5-minute figure split by the port's accepted work


class CountryRate(msgspec.Struct, kw_only=True):
    country: str
    hashrate: float                     # 5-minute window, over the seconds the country was observed
    low: float = 0.0                    # 95 % bounds
    high: float | None = None


class MetricsSnapshot(msgspec.Struct, kw_only=True):
    """What one /metrics scrape renders: the components' own snapshots as they published them, and
    the figures read from Redis for this scrape. pool/admin/metrics.py renders every field (or names
    it in NOT_RENDERED with the reason); a new metric is a field on a component's snapshot and one
    line there."""

    at: float                           # when the scrape was taken (ages are counted from it)
    processes: list[NodeSnapshot]       # every live pool process, this one first
    chain: ChainSnapshot                # this process's job source (every process mines the same tip)
    geo: GeoSnapshot | None = None      # None: geo disabled
    alert_targets: list[TargetStats] = msgspec.field(default_factory=list)
    ranking: RankKeeperSnapshot | None = None   # the rank keeper (None: this process runs none)
    books_configured: bool = False      # money.dsn is set
    books: BooksSnapshot | None = None  # None: not configured, or PostgreSQL did not answer this scrape
    # Read from Redis for this scrape (None / empty when Redis did not answer).
    redis_latency_seconds: float | None = None
    pool_hashrate: HashrateFigure = msgspec.field(default_factory=lambda: empty_figure(300))
    ports: list[PortRate] = msgspec.field(default_factory=list)
    countries: list[CountryRate] = msgspec.field(default_factory=list)
    blocks_found: int = 0
    best_share_difficulty: float | None = None          # the pool's best share ever (hash-reached difficulty)
    round_best_share_difficulty: float | None = None    # ... since the pool's last block (0: no share yet)


class MetricsSource(Protocol):
    async def snapshot(self) -> MetricsSnapshot: ...
