"""Config reload under load: miners keep mining through it, nobody is disconnected, the new per-IP
limit and port difficulty are in force for new connections, keys that need a restart are named,
and a bad file is refused with the key and the reason while the running config stays. A reload that
one part refuses (a certificate that no longer loads, a database file that is missing) changes no
other part: every part plans its section before any applies."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.geo.mmdb_writer import write_mmdb
from tests.integration.conftest import Fleet
from tests.integration.support import (
    ADMIN,
    Miner,
    add_tls_port,
    admin_api,
    base_config,
    running_pool,
    stratum_port,
    wait_for,
    write_config,
)
from tests.stratum.test_tls import OPENSSL, make_cert

pytestmark = pytest.mark.timeout(120)


async def test_reload_under_load_keeps_every_miner(redis_url: str, tmp_path: Path, fleet: Fleet) -> None:
    data = base_config(redis_url, tmp_path)
    # No block in this test: a block found mid-run sends clean_jobs, and a share in flight for the old
    # job is then rightly "Stale"; the test is about reloads costing no share.
    data["chain"]["devnet"]["nbits"] = "1d00ffff"
    config_path = write_config(tmp_path / "pool.toml", data)
    async with running_pool(config_path) as app, admin_api(app) as api:
        assert app.server is not None and app.admin is not None
        port = stratum_port(app)
        miners = [fleet.add(Miner("127.0.0.1", port, f"gus.rig{i}")) for i in range(3)]
        await wait_for(lambda: all(m.stats.accepted >= 2 for m in miners), 20, "every miner's shares")

        changed = copy.deepcopy(data)
        changed["stratum"]["limits"]["max_connections_per_ip"] = 3
        changed["stratum"]["ports"][0].update(start_difficulty=4e-6, min_difficulty=2e-7)
        changed["stratum"]["notify_interval"] = 20.0
        changed["admin"]["rate_limit_burst"] = 500
        changed["ledger"]["flush_interval_ms"] = 200
        write_config(config_path, changed)
        before = [m.stats.accepted for m in miners]
        status, result = await api.call("POST", "/api/v1/reload", ADMIN)
        assert status == 200 and result["ok"] is True and result["error"] == ""
        assert sorted(result["applied"]) == ["admin.rate_limit_burst", "stratum.limits.max_connections_per_ip",
                                             "stratum.ports[0].min_difficulty", "stratum.ports[0].start_difficulty"]
        assert sorted(result["requires_restart"]) == ["ledger.flush_interval_ms", "stratum.notify_interval"]
        assert app.server.config.limits.max_connections_per_ip == 3
        assert app.admin.ctx.config.rate_limit_burst == 500
        assert app.config.ledger.flush_interval_ms == 100                 # still the running value

        # The limit is in force: a fourth connection from 127.0.0.1 is refused ...
        crowd = fleet.add(Miner("127.0.0.1", port, "gus.rig3"))
        await wait_for(lambda: crowd.disconnected, 10, "the connection over the per-IP limit to be refused")
        assert crowd.stats.accepted == 0
        # ... while another address connects and gets the new start difficulty.
        newcomer = fleet.add(Miner("127.0.0.1", port, "gus.rig4", source_address="127.0.0.2"))
        await wait_for(lambda: newcomer.stats.accepted >= 1, 20, "shares from the newcomer")
        assert newcomer.stats.difficulty == 4e-6
        ports = await api.get("/api/v1/ports")
        assert ports[0]["start_difficulty"] == 4e-6 and ports[0]["min_difficulty"] == 2e-7
        assert ports[0]["connections"] == 4

        # A bad file is refused with the key and why; nothing changes.
        config_path.write_text(config_path.read_text().replace("max_connections_per_ip = 3",
                                                               "max_connections_per_ip = 0"))
        status, body = await api.call("POST", "/api/v1/reload", ADMIN)
        assert status == 422 and body["error"] == "config_invalid"
        assert body["reason"] == "stratum.limits.max_connections_per_ip: must be > 0, got 0"
        assert app.server.config.limits.max_connections_per_ip == 3

        # Everyone who was mining kept mining through both reloads, and nobody was disconnected.
        await wait_for(lambda: all(m.stats.accepted >= b + 3 for m, b in zip(miners, before, strict=True)),
                       20, "more shares after the reloads")
        for miner in [*miners, newcomer]:
            assert not miner.disconnected
            await miner.finish()                                           # raises if the pool had closed it
            assert miner.stats.rejected == 0


def city_release(path: Path) -> Path:
    """A City database that puts 8.8.8.0/24 in Canada (the default database says the US)."""
    city = {"country": {"iso_code": "CA", "names": {"en": "Canada"}}, "subdivisions": [{"names": {"en": "Quebec"}}]}
    return write_mmdb(path, "GeoLite2-City", [("8.8.8.0/24", city)], build_epoch=1_760_000_000)


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (apt-get install -y openssl)")
async def test_a_reload_one_part_refuses_changes_no_other_part(redis_url: str, tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path / "certs")
    data = base_config(redis_url, tmp_path)
    add_tls_port(data, cert, key)
    config_path = write_config(tmp_path / "pool.toml", data)
    async with running_pool(config_path) as app, admin_api(app) as api:
        assert app.server is not None and app.admin is not None and app.locator is not None
        assert app.locator.tag_connection("8.8.8.8")[0] == "US"
        changed = copy.deepcopy(data)
        changed["geo"] = {"city_db": str(city_release(tmp_path / "city.mmdb"))}
        changed["stratum"]["limits"]["max_connections_per_ip"] = 3
        changed["admin"]["rate_limit_burst"] = 500
        # The file names new certificate files (a restart takes them) and the running port's own
        # files no longer load: the file is valid, the reload of the running certificate is not.
        moved, moved_key = make_cert(tmp_path / "moved")
        changed["stratum"]["ports"][1].update(tls_cert_file=str(moved), tls_key_file=str(moved_key))
        write_config(config_path, changed)
        good_cert = cert.read_bytes()
        cert.write_text("not a certificate")
        status, body = await api.call("POST", "/api/v1/reload", ADMIN)
        assert status == 422 and body["reason"].startswith("stratum.ports[1].tls_cert_file: ")
        # The geo plan had opened the new database; nothing of it (or of the rest) is in force.
        assert app.config.geo.city_db == "" and app.locator.config.city_db == ""
        assert app.locator.tag_connection("8.8.8.8")[0] == "US"
        assert app.server.config.limits.max_connections_per_ip == 100
        assert app.admin.ctx.config.rate_limit_burst == 1000

        cert.write_bytes(good_cert)
        status, result = await api.call("POST", "/api/v1/reload", ADMIN)
        assert status == 200 and result["ok"] is True
        assert sorted(result["applied"]) == ["admin.rate_limit_burst", "geo.city_db",
                                             "stratum.limits.max_connections_per_ip",
                                             "stratum.ports[1].tls_cert_file"]
        assert sorted(result["requires_restart"]) == ["stratum.ports[1].tls_cert_file", "stratum.ports[1].tls_key_file"]
        assert app.locator.tag_connection("8.8.8.8")[0] == "CA"
        assert app.config.geo is app.locator.config and app.rollup is not None and app.rollup.config is app.config.geo
        assert app.server.config.limits.max_connections_per_ip == 3
        assert app.admin.ctx.config is app.config.admin and app.config.admin.rate_limit_burst == 500


async def test_a_refused_geo_reload_keeps_naming_the_files_that_serve(redis_url: str, tmp_path: Path) -> None:
    """Issue 10, defect 3: after a refused reload config.city_db named the missing file."""
    data = base_config(redis_url, tmp_path)
    data["geo"] = {"city_db": str(city_release(tmp_path / "city.mmdb"))}
    config_path = write_config(tmp_path / "pool.toml", data)
    async with running_pool(config_path) as app, admin_api(app) as api:
        assert app.server is not None and app.locator is not None
        changed = copy.deepcopy(data)
        changed["geo"]["city_db"] = str(tmp_path / "missing.mmdb")
        changed["stratum"]["limits"]["max_connections_per_ip"] = 3
        write_config(config_path, changed)
        status, body = await api.call("POST", "/api/v1/reload", ADMIN)
        assert status == 422 and body["reason"].startswith("geo.city_db: ")
        assert app.config.geo.city_db == app.locator.config.city_db == str(tmp_path / "city.mmdb")
        assert app.locator.tag_connection("8.8.8.8")[0] == "CA"
        assert app.server.config.limits.max_connections_per_ip == 100
