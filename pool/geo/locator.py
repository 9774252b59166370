"""IP -> region: geoip2 on a real .mmdb, looked up once per connection, behind a bounded LRU cache.

A region is (ISO country, subdivision). Private/reserved addresses get the bucket "XP", addresses the
database does not know get "ZZ"; both are reported, never dropped. The hosting flag comes only from an
Anonymous-IP database or an ASN database (with a table of hosting ASNs); with a City/Country database
alone it is unknown and recorded as False, which `hosting_source` says.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import json
import logging
import time
from pathlib import Path

import geoip2.database
import geoip2.errors
import maxminddb
import msgspec

from pool.config.changes import ReloadPlan, field_of, section_changes, split_restart
from pool.config.errors import ConfigError
from pool.config.geo import GeoConfig
from pool.geo.asn_table import ATTRIBUTION as ASN_ATTRIBUTION
from pool.geo.asn_table import AsnRanges, open_asn_ranges
from pool.geo.asn_table import release as asn_release
from pool.geo.databases import (
    ASN_PACKAGE,
    NODE_MODULES,
    database_type,
    default_location_files,
    installed_release,
    location_mmdb,
    place_of,
)
from pool.geo.subdivisions import canonical_name
from pool.geo.tables import PRIVATE, UNKNOWN, builtin_hosting_asns

log = logging.getLogger(__name__)

CC_BY_4 = "https://creativecommons.org/licenses/by/4.0/"


class DatabaseInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What is kept with the data: the same IP can change country between database releases."""

    role: str            # "location", "asn" or "anonymous-ip"
    type: str            # the .mmdb database_type, e.g. "DBIP-City-Lite", "GeoLite2-City"
    description: str
    build_epoch: int
    build_date: str      # YYYY-MM-DD (UTC) of build_epoch
    attribution: str

    @property
    def ident(self) -> str:
        return f"{self.role}|{self.type}|{self.build_date}"


class GeoSnapshot(msgspec.Struct, kw_only=True):
    """The databases in use and the age past which they are stale."""

    databases: list[DatabaseInfo]
    max_database_age_days: int


class GeoTag(msgspec.Struct, frozen=True, array_like=True):
    country: str         # ISO alpha-2, "XP" private/reserved, "ZZ" unknown
    subdivision: str     # first-level subdivision name (or code when the database has no name), "" if none
    hosting: bool

    def as_tuple(self) -> tuple[str, str, bool]:
        return (self.country, self.subdivision, self.hosting)


PRIVATE_TAG = GeoTag(PRIVATE, "", False)
UNKNOWN_TAG = GeoTag(UNKNOWN, "", False)


def default_city_db() -> Path:
    """The first default location file (see pool.geo.databases.default_location_files)."""
    return default_location_files()[0]


def location_files(config: GeoConfig) -> list[Path]:
    return location_mmdb(Path(config.city_db)) if config.city_db else default_location_files(config.update_dir)


def attribution_for(database_type: str) -> str:
    if database_type.startswith("DBIP"):
        return f"IP geolocation by DB-IP (https://db-ip.com), licensed under CC BY 4.0 ({CC_BY_4})."
    if database_type.startswith("GeoLite2"):
        return ("This product includes GeoLite2 data created by MaxMind, available from "
                "https://www.maxmind.com.")
    if database_type.startswith("GeoIP2"):
        return "IP geolocation by MaxMind GeoIP2 (https://www.maxmind.com)."
    return f"IP geolocation: {database_type}."


def _open(path: str | Path, key: str, role: str) -> tuple[geoip2.database.Reader, DatabaseInfo]:
    try:
        reader = geoip2.database.Reader(str(path), mode=maxminddb.MODE_AUTO)
    except (OSError, maxminddb.InvalidDatabaseError, ValueError) as exc:
        raise ConfigError(key, f"cannot open {path}: {exc}") from None
    meta = reader.metadata()
    built = dt.datetime.fromtimestamp(meta.build_epoch, dt.UTC).date().isoformat()
    info = DatabaseInfo(
        role=role, type=meta.database_type, description=(meta.description or {}).get("en", ""),
        build_epoch=int(meta.build_epoch), build_date=built, attribution=attribution_for(meta.database_type),
    )
    return reader, info


def _open_location(path: Path) -> tuple[maxminddb.Reader, DatabaseInfo]:
    try:
        reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    except (OSError, maxminddb.InvalidDatabaseError, ValueError) as exc:
        raise ConfigError("geo.city_db", f"cannot open {path}: {exc}") from None
    meta = reader.metadata()
    kind = database_type(meta.database_type, path)
    if "City" not in kind and "Country" not in kind:
        reader.close()
        raise ConfigError("geo.city_db", f"{path} is a {kind} database, not City or Country")
    built = dt.datetime.fromtimestamp(meta.build_epoch, dt.UTC).date().isoformat()
    description = (meta.description or {}).get("en", "") or f"{path.name} ({meta.database_type})"
    package = path.parent / "package.json"        # an npm package's file: say which release
    if package.is_file():
        try:
            about = json.loads(package.read_text())
            description += f", npm {about['name']} {about['version']}"
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return reader, DatabaseInfo(role="location", type=kind, description=description,
                                build_epoch=int(meta.build_epoch), build_date=built,
                                attribution=attribution_for(kind))


def asn_source_for(config: GeoConfig) -> Path | None:
    """geo.asn_db: "" -> the ASN .mmdb of the `geo update` release in use (MaxMind's GeoLite2-ASN), else
    no ASN data; "npm" -> the package @ip-location-db/asn that scripts/setup.sh installs;
    else a GeoLite2/GeoIP2 ASN .mmdb or a folder holding ip-location-db's asn-ipv4-num.csv / asn-ipv6-num.csv."""
    if not config.asn_db:
        return installed_release(config.update_dir, "asn")
    if config.asn_db == "npm":
        folder = NODE_MODULES / ASN_PACKAGE
        if not (folder / "asn-ipv4-num.csv").is_file():
            # An install without the npm step (e.g. a slim container): hosting unknown, said loudly.
            log.warning("geo.asn_db = \"npm\" but %s is not installed in %s (run scripts/setup.sh): "
                        "hosting is unknown", ASN_PACKAGE, NODE_MODULES)
            return None
        return folder
    return Path(config.asn_db)


def _open_asn_table(folder: Path) -> tuple[AsnRanges, DatabaseInfo]:
    try:
        table = open_asn_ranges(folder)
    except (OSError, ValueError) as exc:
        raise ConfigError("geo.asn_db", f"cannot read the ASN table in {folder}: {exc}") from None
    description, built, epoch = asn_release(folder)
    return table, DatabaseInfo(role="asn", type="ip-location-db-ASN", description=description, build_epoch=epoch,
                               build_date=built, attribution=ASN_ATTRIBUTION)


def _files_signature(config: GeoConfig) -> tuple[tuple[str, int, int], ...]:
    asn = asn_source_for(config)
    paths = [*location_files(config), *([asn] if asn else [])]
    if config.anonymous_db:
        paths.append(Path(config.anonymous_db))
    out = []
    for path in paths:
        resolved = path.resolve()
        stat = resolved.stat()
        out.append((str(resolved), stat.st_ino, stat.st_mtime_ns))
    return tuple(out)


async def watch_databases(locator: GeoLocator, interval: float) -> None:
    """Reload the databases when their files change (`geostratum geo update` swaps a release in)."""
    while True:
        await asyncio.sleep(interval)
        if locator.files_changed():
            before = ", ".join(f"{d.type} {d.build_date}" for d in locator.databases)
            try:
                locator.reload()
            except ConfigError as exc:
                log.error("geo: the new database files are refused, still serving %s: %s", before, exc)
                continue
            log.warning("geo: databases reloaded: %s (was %s)",
                        ", ".join(f"{d.type} {d.build_date}" for d in locator.databases), before)


def normalise_ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


# Keys of [geo] that name the database files or how they are read: a change opens the files again.
LOCATOR_FIELDS = ("city_db", "update_dir", "asn_db", "anonymous_db", "hosting_asns", "builtin_hosting_asns",
                  "cache_size", "attribution")
GEO_RESTART_FIELDS = ("enabled",)       # the app builds the locator and the rollup, or does not


class OpenDatabases(msgspec.Struct, frozen=True, kw_only=True):
    """One set of database files, opened together and checked (not serving until a locator swaps it in)."""

    raws: tuple[maxminddb.Reader, ...]          # the location files (one per address family, or one for both)
    raw4: maxminddb.Reader
    raw6: maxminddb.Reader | None
    asn: geoip2.database.Reader | AsnRanges | None
    anon: geoip2.database.Reader | None
    hosting_asns: frozenset[int]
    databases: tuple[DatabaseInfo, ...]
    signature: tuple[tuple[str, int, int], ...]  # _files_signature of the files opened

    def close(self) -> None:
        for reader in (*self.raws, self.asn, self.anon):
            if reader is not None:
                reader.close()


def open_databases(config: GeoConfig) -> OpenDatabases:
    """Open and check the files `config` names; ConfigError names the key (and no reader is left open)."""
    raws: list[maxminddb.Reader] = []
    infos: list[DatabaseInfo] = []
    try:
        for path in location_files(config):
            reader, info = _open_location(path)
            raws.append(reader)
            if info.ident not in {i.ident for i in infos}:    # the IPv4 and IPv6 files of one release
                infos.append(info)
    except BaseException:
        for reader in raws:
            reader.close()
        raise
    # One reader per address family: a MaxMind file holds both, ip-location-db ships one of each.
    if not raws:
        raise ConfigError("geo.city_db", f"no .mmdb file in {config.city_db or config.update_dir}")
    raw4 = next((r for r in raws if r.metadata().ip_version == 4), raws[0])
    raw6 = next((r for r in raws if r.metadata().ip_version == 6), None)
    asn = anon = None
    try:
        asn_source = asn_source_for(config)
        if asn_source is not None and asn_source.is_dir():       # ip-location-db's CSV release
            asn, asn_info = _open_asn_table(asn_source)
            infos.append(asn_info)
        elif asn_source is not None:
            asn, asn_info = _open(asn_source, "geo.asn_db", "asn")
            if "ASN" not in asn_info.type:
                raise ConfigError("geo.asn_db", f"{asn_source} is a {asn_info.type} database, not ASN")
            infos.append(asn_info)
        if config.anonymous_db:
            anon, anon_info = _open(config.anonymous_db, "geo.anonymous_db", "anonymous-ip")
            if "Anonymous-IP" not in anon_info.type:
                raise ConfigError("geo.anonymous_db",
                                  f"{config.anonymous_db} is a {anon_info.type} database, not Anonymous-IP")
            infos.append(anon_info)
        signature = _files_signature(config)
    except BaseException:
        for reader in (*raws, asn, anon):   # a refused set of files leaks no reader
            if reader is not None:
                reader.close()
        raise
    hosting_asns = set(config.hosting_asns)
    if config.builtin_hosting_asns:
        hosting_asns |= builtin_hosting_asns()
    return OpenDatabases(raws=tuple(raws), raw4=raw4, raw6=raw6, asn=asn, anon=anon,
                         hosting_asns=frozenset(hosting_asns), databases=tuple(infos), signature=signature)


class GeoReload(ReloadPlan, frozen=True, kw_only=True):
    """The [geo] part of a config reload. The section is read where it is used (retention, privacy
    rules, exports, the staleness the locator reports), so every key but `enabled` applies live."""

    config: GeoConfig                           # the [geo] in force after it (geo.enabled kept)
    databases: OpenDatabases | None = None      # the files a changed key names, opened; None: the open ones stay


def plan_geo_reload(running: GeoConfig, new: GeoConfig) -> GeoReload:
    """The keys of a reloaded [geo] and the section to put in force (GeoLocator.plan_reload adds the
    files; this alone where no locator runs)."""
    applied, restart = split_restart(section_changes(running, new, "geo"), GEO_RESTART_FIELDS)
    config = msgspec.structs.replace(new, **{f: getattr(running, f) for f in GEO_RESTART_FIELDS})
    return GeoReload(config=config, applied=applied, requires_restart=restart)


class GeoLocator:
    """Open the configured databases; `tag_connection(ip)` is what the stratum server calls."""

    def __init__(self, config: GeoConfig | None = None) -> None:
        self.config = config or GeoConfig()
        self._lookup_cached = functools.lru_cache(maxsize=self.config.cache_size or None)(self._lookup)
        self._files: OpenDatabases | None = None
        self._swap(open_databases(self.config), self.config)

    @classmethod
    def from_config(cls, config: GeoConfig) -> GeoLocator:
        return cls(config)

    def _swap(self, opened: OpenDatabases, config: GeoConfig) -> None:
        """Swap every file at once, then drop the cache: a lookup never mixes two releases."""
        old, self._files = self._files, opened
        self._raws, self._raw4, self._raw6 = opened.raws, opened.raw4, opened.raw6
        self._asn, self._anon, self._hosting_asns = opened.asn, opened.anon, opened.hosting_asns
        self.databases: tuple[DatabaseInfo, ...] = opened.databases
        self._lookup_cached.cache_clear()
        self._signature = opened.signature
        self._warn_if_stale(config)
        if old is not None:
            old.close()

    def snapshot(self) -> GeoSnapshot:
        return GeoSnapshot(databases=list(self.databases), max_database_age_days=self.config.max_database_age_days)

    def files_changed(self) -> bool:
        """Whether the database files now differ from the ones open (a `geo update` swapped them)."""
        try:
            return _files_signature(self.config) != self._signature
        except (ConfigError, OSError):
            return False                 # half-installed or missing: keep serving the open ones

    def stale(self, config: GeoConfig | None = None, now: float | None = None) -> list[tuple[DatabaseInfo, float]]:
        """(database, age in days) of each database older than geo.max_database_age_days."""
        limit = (config or self.config).max_database_age_days
        now = time.time() if now is None else now
        ages = [(d, (now - d.build_epoch) / 86400) for d in self.databases]
        return [(d, age) for d, age in ages if age > limit]

    def location_age_days(self, now: float | None = None) -> float | None:
        """Days since the location database in use was built (None: no location database)."""
        location = next((d for d in self.databases if d.role == "location"), None)
        if location is None:
            return None
        return ((time.time() if now is None else now) - location.build_epoch) / 86400

    def _warn_if_stale(self, config: GeoConfig) -> None:
        for info, age in self.stale(config):
            remedy = ("run `geostratum geo update`" if info.role == "location"
                      else "install a newer release (scripts/setup.sh pins the npm one)")
            log.warning("geo: %s %s database built %s is %.0f days old (more than geo.max_database_age_days = %d); "
                        "IP blocks move between countries and networks: %s", info.role, info.type,
                        info.build_date, age, config.max_database_age_days, remedy)

    def reload(self, config: GeoConfig | None = None) -> None:
        """Swap in new database files (a new release, or another vendor). Connections tagged before
        keep their region; rollups record which databases were in use per day."""
        # Open the new files first: a refused reload leaves config, cache and databases as they were.
        config = config or self.config
        self._install(config, open_databases(config))

    def _install(self, config: GeoConfig, opened: OpenDatabases | None) -> None:
        if opened is not None:
            self._swap(opened, config)
            if config is not self.config:
                self._lookup_cached = functools.lru_cache(maxsize=config.cache_size or None)(self._lookup)
        self.config = config

    def plan_reload(self, new: GeoConfig) -> GeoReload:
        """This locator's part of a config reload: the new files opened and checked when a key naming
        them changed, nothing swapped yet; ConfigError names the key (and no file stays open)."""
        plan = plan_geo_reload(self.config, new)
        if any(field_of(key) in LOCATOR_FIELDS for key in plan.applied):
            plan = msgspec.structs.replace(plan, databases=open_databases(plan.config))
        return plan

    def apply_reload(self, plan: GeoReload) -> list[str]:
        """Put a plan from plan_reload in force (cannot fail); the keys applied."""
        if plan.applied:
            self._install(plan.config, plan.databases)
        return list(plan.applied)

    def close(self) -> None:
        if self._files is not None:
            self._files.close()

    # --- lookups -------------------------------------------------------------------------------

    def lookup(self, ip: str) -> GeoTag:
        return self._lookup_cached(ip)

    def tag_connection(self, ip: str) -> tuple[str, str, bool]:
        """(country, subdivision, hosting) for a connection's source address (after PROXY)."""
        return self._lookup_cached(ip).as_tuple()

    def lookup_uncached(self, ip: str) -> GeoTag:
        return self._lookup(ip)

    def cache_info(self) -> functools._CacheInfo:
        return self._lookup_cached.cache_info()

    def _lookup(self, ip: str) -> GeoTag:
        addr = normalise_ip(ip)
        if addr is None:
            log.warning("geo: not an IP address: %r", ip)
            return UNKNOWN_TAG
        if not addr.is_global or addr.is_multicast or addr.is_reserved:
            return PRIVATE_TAG
        text = str(addr)
        reader = self._raw6 if addr.version == 6 else self._raw4
        if reader is None:                       # an IPv6 address and an IPv4-only database
            return GeoTag(UNKNOWN, "", self._hosting(text))
        country, subdivision = place_of(reader.get(text))
        if len(country) != 2:
            return GeoTag(UNKNOWN, "", self._hosting(text))
        # One spelling per subdivision, whatever this release calls it.
        return GeoTag(country, canonical_name(country, subdivision), self._hosting(text))

    def asn_of(self, ip: str) -> int | None:
        """The AS number the ASN database gives the address (None: no ASN .mmdb, or not in it)."""
        if not isinstance(self._asn, geoip2.database.Reader):
            return None
        try:
            return self._asn.asn(ip).autonomous_system_number
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None

    def _hosting(self, ip: str) -> bool:
        if self._anon is not None:
            try:
                anon = self._anon.anonymous_ip(ip)
            except geoip2.errors.AddressNotFoundError:
                pass
            else:
                if (anon.is_anonymous or anon.is_hosting_provider or anon.is_public_proxy
                        or anon.is_tor_exit_node or anon.is_anonymous_vpn or anon.is_residential_proxy):
                    return True
        if self._asn is not None and self._hosting_asns:
            try:
                number = self._asn.asn(ip).autonomous_system_number
            except geoip2.errors.AddressNotFoundError:
                return False
            return number in self._hosting_asns
        return False

    # --- what is shown with the data -----------------------------------------------------------

    @property
    def hosting_source(self) -> str | None:
        """Which database says what is hosting/anonymous; None: unknown (counted as not hosting)."""
        roles = [f"{d.type} {d.build_date}" for d in self.databases if d.role in ("anonymous-ip", "asn")]
        return ", ".join(roles) if roles else None

    @property
    def attribution(self) -> str:
        if self.config.attribution:
            return self.config.attribution
        return " ".join(dict.fromkeys(d.attribution for d in self.databases))
