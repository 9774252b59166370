"""Geo test fixtures: the real DB-IP database, test .mmdb files written by our writer, async Redis."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from pool.config.geo import GeoConfig
from pool.geo import GeoLocator
from tests.geo.mmdb_writer import write_mmdb

SWAP_BUILD = dt.datetime(2026, 10, 15, 3, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def locator() -> GeoLocator:
    return GeoLocator(GeoConfig())


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def _city(iso: str, name: str, subdivision: str) -> dict:
    return {"country": {"iso_code": iso, "names": {"en": name}},
            "subdivisions": [{"names": {"en": subdivision}}]}


@pytest.fixture(scope="session")
def geo_dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A second City release (different build date, moves 8.8.8.0/24 to Canada), an ASN and an
    Anonymous-IP database."""
    root = tmp_path_factory.mktemp("mmdb")
    city = write_mmdb(root / "city-2026.mmdb", "GeoLite2-City", [
        ("8.8.8.0/24", _city("CA", "Canada", "Quebec")),
        ("81.2.69.0/24", _city("GB", "United Kingdom", "England")),
        ("2001:4860::/32", _city("US", "United States", "California")),
    ], build_epoch=int(SWAP_BUILD.timestamp()), description="GeoLite2 City test release")
    asn = write_mmdb(root / "asn.mmdb", "GeoLite2-ASN", [
        ("8.8.8.0/24", {"autonomous_system_number": 15169, "autonomous_system_organization": "Google"}),
        ("81.2.69.0/24", {"autonomous_system_number": 64512, "autonomous_system_organization": "Home ISP"}),
        ("1.1.1.0/24", {"autonomous_system_number": 13335, "autonomous_system_organization": "Cloudflare"}),
    ], build_epoch=1_760_000_000)
    anon = write_mmdb(root / "anon.mmdb", "GeoIP2-Anonymous-IP", [
        ("81.2.69.0/28", {"is_anonymous": True, "is_anonymous_vpn": True}),
    ], build_epoch=1_760_000_000)
    return {"city": city, "asn": asn, "anonymous": anon}
