"""[admin] section: the HTTP admin API, metrics and dashboard."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from pool.config.constraints import FiniteNonNegative, FinitePositive, PortNumber, PositiveInt, check_fields
from pool.config.errors import ConfigError

# Endpoint groups that may be opened to requests without a token (see docker/README.md).
AnonymousGroup = Literal["dashboard", "health", "metrics", "miner"]
MIN_TOKEN_LENGTH = 16
_HASHED_TOKEN = re.compile(r"^sha256:[0-9a-f]{64}$")


class AdminConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: PortNumber = 8080
    # Bearer tokens. An entry is the token itself or "sha256:<hex digest of the token>" so the
    # file need not hold the secret. GEOSTRATUM_ADMIN_TOKENS / GEOSTRATUM_READ_TOKENS (comma
    # separated) add more from the environment.
    read_tokens: list[str] = msgspec.field(default_factory=list)
    admin_tokens: list[str] = msgspec.field(default_factory=list)
    # Groups readable without a token: "dashboard" (overview, history, blocks, regions with
    # small regions folded), "health", "metrics", "miner" (an account's own page and its JSON, as on
    # public-pool and solo pools where the address is the key). Empty: every data endpoint needs a token.
    anonymous: list[AnonymousGroup] = msgspec.field(default_factory=list)
    # The host name miners point at, for the stratum+tcp:// / stratum+ssl:// URLs on the miner page
    # ("" = the host the page was asked for).
    public_stratum_host: str = ""
    # The pool's public web site (http:// or https://), which the miner page links back to for a visitor
    # without an operator token ("" = this server's dashboard at /).
    public_home_url: str = ""
    # The miner page charts this many of an account's workers (by name); the rest are listed.
    miner_page_worker_charts: int = 20
    # Token bucket per client (per token, or per address for requests without a valid token).
    rate_limit_per_second: FinitePositive = 10.0
    rate_limit_burst: PositiveInt = 40
    rate_limit_max_clients: PositiveInt = 10_000
    max_body_bytes: PositiveInt = 65_536
    max_json_depth: PositiveInt = 32             # a request body nested deeper answers 400 before it is decoded
    # A provider call slower than this answers 504 instead of holding the request.
    request_timeout_seconds: FinitePositive = 10.0
    # BTC price in USD for the revenue figures; 0 = unknown (it can be fed at run time).
    btc_usd_price: FiniteNonNegative = 0.0
    # Pool share of recent blocks is counted over this many network blocks.
    recent_blocks_window: PositiveInt = 1008
    # Anonymous dashboard: regions with fewer distinct miners fold into "Other".
    anonymous_region_min_miners: PositiveInt = 10
    dashboard_refresh_seconds: FinitePositive = 5.0
    # Where the map page's npm packages are (world-atlas, us-atlas, d3-geo...); empty: the
    # node_modules folder that scripts/setup.sh fills at the top of the checkout.
    assets_dir: str = ""
    max_page_size: PositiveInt = 500
    max_history_seconds: PositiveInt = 7 * 86_400
    export_max_days: PositiveInt = 1100          # as long as [geo] max_export_days allows by default
    shutdown_timeout_seconds: FinitePositive = 5.0
    # Several worker processes: each publishes its live figures to Redis this often; a process silent for
    # snapshot_ttl_seconds is gone; worker 0 waits control_timeout_seconds for the others' replies.
    snapshot_interval_seconds: FinitePositive = 2.0
    snapshot_ttl_seconds: FinitePositive = 10.0
    control_timeout_seconds: FinitePositive = 3.0
    # Health: unhealthy when accepted shares wait longer than this for Redis, or the template is older
    # than max(health_template_age_seconds, 3 x chain.template_refresh_interval).
    health_flush_lag_seconds: FinitePositive = 30.0
    health_template_age_seconds: FinitePositive = 120.0

    def validate(self) -> None:
        check_fields(self)
        if not self.host:
            raise ConfigError("host", "must not be empty")
        if self.public_stratum_host and not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]{1,253}", self.public_stratum_host):
            raise ConfigError("public_stratum_host",
                              f"must be a host name or address, got {self.public_stratum_host!r}")
        if self.public_home_url and not re.fullmatch(r"https?://[^\s\"'<>]{1,2000}", self.public_home_url):
            raise ConfigError("public_home_url",
                              f"must be an http:// or https:// URL, got {self.public_home_url[:80]!r}")
        for field in ("read_tokens", "admin_tokens"):
            for i, token in enumerate(getattr(self, field)):
                check_token_entry(token, f"{field}[{i}]")
        if self.snapshot_ttl_seconds <= self.snapshot_interval_seconds:
            raise ConfigError("snapshot_ttl_seconds", "must be longer than snapshot_interval_seconds")


def check_token_entry(token: str, key: str) -> None:
    """A token is long enough to resist guessing, or a sha256 digest of one."""
    if token.startswith("sha256:"):
        if not _HASHED_TOKEN.match(token):
            raise ConfigError(key, "a hashed token is sha256: followed by 64 lowercase hex digits")
        return
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(key, f"must be at least {MIN_TOKEN_LENGTH} characters")
    if any(ch.isspace() for ch in token) or not token.isprintable():
        raise ConfigError(key, "must not contain whitespace or control characters")
