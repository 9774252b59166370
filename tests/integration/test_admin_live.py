"""Every admin endpoint against a live pool on the devnet: real miners hashing (some behind PROXY v2
headers carrying real public IPs), real Redis, the real chain. The numbers the API shows are checked
against what the miners, the chain and the ledger say."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from pool.admin.auth import Scope
from pool.admin.routes import ROUTES
from pool.geo.country_ips import draw_ips
from pool.geo.firmware import classify_firmware
from tests.integration.conftest import Fleet
from tests.integration.support import (
    ADMIN,
    READ,
    Miner,
    admin_api,
    base_config,
    flushed,
    running_pool,
    stratum_port,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.timeout(120)


async def test_every_endpoint_on_a_live_pool(redis_url: str, tmp_path: Path, fleet: Fleet, books_dsn: str) -> None:
    config_path = write_config(tmp_path / "pool.toml", base_config(redis_url, tmp_path, books_dsn=books_dsn))
    rng = random.Random(7)
    de_ips, us_ips = draw_ips("DE", 2, rng), draw_ips("US", 1, rng)
    async with running_pool(config_path) as app:
        assert app.admin is not None and app.locator is not None and app.jobs is not None
        port = stratum_port(app)
        miners = {
            "alice.de1": Miner("127.0.0.1", port, "alice.de1", public_ip=de_ips[0]),
            "alice.de2": Miner("127.0.0.1", port, "alice.de2", public_ip=de_ips[1]),
            "bob.us": Miner("127.0.0.1", port, "bob.us", public_ip=us_ips[0]),
            "carol.local": Miner("127.0.0.1", port, "carol.local"),
        }
        start_height = app.jobs.devnet.height
        for miner in miners.values():
            fleet.add(miner)
        await wait_for(lambda: sum(b.accepted for b in app.blocks) >= 2
                       and all(m.stats.accepted >= 2 for m in miners.values()), 30, "blocks and shares")
        await flushed(app)

        async with admin_api(app) as api:
            # -- authentication on every route ---------------------------------------------------
            fill = {"{worker}": "alice.de1", "{account}": "alice", "{kind}": "regions", "{port}": str(port)}
            today = dt.datetime.now(dt.UTC).date()
            for route in ROUTES:
                path = route.path
                for key, value in fill.items():
                    path = path.replace(key, value)
                if route.path.endswith("/exports/{kind}"):
                    path += f"?period=daily&start={today}&end={today + dt.timedelta(days=1)}"
                status, body = await api.call(route.method, path)
                assert status == 401, (route.path, status, body)
                assert body["error"] == "unauthorized"
                status, body = await api.call(route.method, path, {"Authorization": "Bearer not-a-valid-token-000"})
                assert status == 401, (route.path, status)
                if route.scope is Scope.ADMIN:
                    status, body = await api.call(route.method, path, READ)
                    assert status == 403, (route.path, status, body)
                else:
                    status, body = await api.call(route.method, path, READ)
                    assert status == 200, (route.path, status, body)

            # -- overview: live connections, workers, shares, blocks, the chain ------------------
            found = [b for b in app.blocks if b.accepted]
            counted = {name: m.stats.accepted for name, m in miners.items()}
            before = sum(counted.values())
            await flushed(app)          # the overview's share count is the ledger's window in Redis
            overview = await api.get("/api/v1/overview")
            after = sum(m.stats.accepted for m in miners.values())
            assert overview["pool"]["connections"] == 4
            assert overview["pool"]["workers"] == 4 and overview["pool"]["accounts"] == 3
            assert before <= overview["shares"]["accepted"] <= after + 4       # replies may be in flight
            assert overview["shares"]["rejected_total"] == sum(m.stats.rejected for m in miners.values())
            # hashrate from the ledger's buckets: the accepted difficulty x 2^32 over the window
            windows = overview["pool"]["hashrate"]
            assert windows["1h"]["hashrate"] > 0 and windows["5m"]["hashrate"] > 0
            assert overview["blocks"]["found"] >= len(found) >= 2
            net = overview["network"]
            assert net["chain"] == "devnet" and start_height + 2 <= net["height"] <= app.jobs.devnet.height
            assert overview["next_adjustment"] is None                         # the devnet never retargets
            assert overview["revenue"]["fee_blocks"] >= 2                      # fees of the pool's own blocks
            # The round in progress: opened after a block the ledger has (the first one was flushed before
            # the second was found), or not opened yet (a block was just found: no share since), and its
            # effort is its difficulty over the network's.
            round_ = overview["round"]
            if round_["opened_at"] is None:
                assert round_["shares"] == 0 and round_["effort"] == 0
            else:
                assert round_["opened_at"] >= min(b.found_at for b in found) - 1
            assert round_["effort"] == pytest.approx(round_["accepted_difficulty"] / net["difficulty"])

            # -- workers and accounts ----------------------------------------------------------
            page = await api.get("/api/v1/workers?sort=name&order=asc")
            assert [w["name"] for w in page["items"]] == sorted(miners) and page["total"] == 4
            by_name = {w["name"]: w for w in page["items"]}
            for name in miners:
                row = by_name[name]
                assert row["connections"] == 1 and row["difficulty"] == pytest.approx(2e-6)
                assert row["accepted"] >= counted[name] and row["firmware"] == classify_firmware("bmminer/2.0.0")
            assert by_name["alice.de1"]["country"] == "DE" and by_name["bob.us"]["country"] == "US"
            assert by_name["carol.local"]["country"] == "XP"                 # 127.0.0.1: private
            page = await api.get("/api/v1/workers?account=alice&search=DE2")
            assert [w["name"] for w in page["items"]] == ["alice.de2"]
            detail = await api.get("/api/v1/workers/alice.de1?history=1h")
            assert detail["connections"][0]["address"] == de_ips[0]          # the PROXY v2 source address
            assert detail["connections"][0]["port"] == port
            assert detail["connections"][0]["subdivision"] == app.locator.lookup(de_ips[0]).subdivision
            assert detail["history"]["window_seconds"] == 3600 and detail["history"]["points"]
            assert app.ledger is not None
            totals_before = await app.ledger.reader.account_totals()
            accounts = await api.get("/api/v1/accounts?sort=name&order=asc")
            totals_after = await app.ledger.reader.account_totals()
            assert [a["account"] for a in accounts["items"]] == ["alice", "bob", "carol"]
            for row in accounts["items"]:                                      # the ledger's all-time count
                assert 0 < totals_before[row["account"]][0] <= row["accepted"] <= totals_after[row["account"]][0]
                assert row["balance_sat"] == 0                                 # no block matured yet
            alice = await api.get("/api/v1/accounts/alice")
            assert alice["summary"]["workers"] == 2 and len(alice["workers"]) == 2
            status, body = await api.call("GET", "/api/v1/workers/nobody.here", ADMIN)
            assert status == 404 and "nobody.here" in body["reason"]

            # -- blocks: the ledger's, on the devnet's chain -------------------------------------
            await flushed(app)
            blocks = await api.get("/api/v1/blocks?limit=50")
            listed = {b["hash"]: b for b in blocks}
            for result in found:
                block = listed[result.block_hash]
                assert block["height"] == result.height and block["worker"] == result.worker
                assert block["status"] in ("pending", "confirmed") and block["reward_sat"] == result.coinbase_value
                on_chain = await app.jobs.backend.getblockhash(result.height)
                assert on_chain == result.block_hash
            assert [b["height"] for b in blocks] == sorted((b["height"] for b in blocks), reverse=True)

            # -- regions from the geo rollups ----------------------------------------------------
            regions = await api.get("/api/v1/regions?level=country&window=5m")
            countries = {r["country"]: r for r in regions["items"]}
            assert {"DE", "US", "XP"} <= set(countries)
            # distinct miners are accounts: alice's two German rigs are one miner, whatever their subdivisions
            assert countries["DE"]["miners"] == 1 and countries["US"]["miners"] == 1
            assert countries["DE"]["country_name"] == "Germany" and countries["DE"]["hashrate"] > 0
            assert regions["database"] == "DB-IP City Lite" and "CC BY 4.0" in regions["attribution"]
            subdivisions = await api.get("/api/v1/regions?level=subdivision&window=5m")
            expected = {app.locator.lookup(ip).subdivision for ip in de_ips}
            assert expected <= {r["subdivision"] for r in subdivisions["items"] if r["country"] == "DE"}

            # -- history, health, metrics --------------------------------------------------------
            history = await api.get("/api/v1/history?window=1h")
            assert history["window_seconds"] == 3600 and len(history["points"]) > 40
            health = await api.get("/api/v1/health")
            names = {c["name"]: c for c in health["components"]}
            assert health["ok"] and names["redis"]["ok"] and names["node:devnet"]["ok"]
            assert names["template"]["ok"] and names["ledger"]["ok"]
            status, metrics = await api.call("GET", "/metrics", READ)
            text = metrics.decode()
            assert status == 200 and "geostratum_workers 4" in text
            # The process leases an 8-bit prefix: 2^24 extranonce1 values, of which the 4 rigs hold one each
            # (and the few parked by reconnects in this test one each).
            free = int(next(line for line in text.splitlines() if line.startswith("geostratum_extranonce_free ")
                            ).split()[1])
            assert 2**24 - 20 <= free <= 2**24 - 4
            accepted_line = next(line for line in text.splitlines()
                                 if line.startswith('geostratum_shares_total{result="accepted"'))
            assert int(accepted_line.split()[-1]) >= before
            assert 'geostratum_country_hashrate_hps{country="DE"}' in text
            assert 'geostratum_node_up{node="devnet"} 1' in text
            # resumes go through the shared directory in Redis: the counters are there from the start
            assert 'geostratum_session_resumes_total{outcome="claimed"} 0' in text

            # -- exports from the rollups --------------------------------------------------------
            kinds = {k["name"]: k for k in await api.get("/api/v1/exports")}
            assert {"ccaf-countries", "ccaf-china", "ccaf-us", "ccaf-contribution", "regions", "firmware",
                    "chart"} == set(kinds)
            day = f"start={today}&end={today}&period=daily"          # end is inclusive
            status, csv = await api.call("GET", f"/api/v1/exports/ccaf-countries?{day}", ADMIN)
            assert status == 200 and csv.decode().startswith("date,country,daily_hashrate_%")
            status, rich = await api.call("GET", f"/api/v1/exports/regions?{day}&format=json", ADMIN)
            assert status == 200 and rich["periods"][0]["accepted_shares"] > 0
            status, svg = await api.call("GET", f"/api/v1/exports/chart?{day}&format=svg", ADMIN)
            assert status == 200 and svg.startswith(b"<svg")
            status, body = await api.call(
                "GET", "/api/v1/exports/regions?start=2020-01-01&end=2020-01-02&period=daily", ADMIN)
            assert status == 404 and body["reason"] == "no data for daily periods 2020-01-01..2020-01-02"

            # -- controls ------------------------------------------------------------------------
            ports = await api.get("/api/v1/ports")
            assert ports == [{"port": port, "start_difficulty": 2e-6, "min_difficulty": 1e-7,
                              "max_difficulty": 1.0, "connections": 4}]
            status, body = await api.call("PUT", f"/api/v1/ports/{port}/difficulty", ADMIN,
                                          json={"start_difficulty": 4e-6})
            assert status == 200 and body["start_difficulty"] == 4e-6
            assert app.server is not None and app.server.config.ports[0].start_difficulty == 4e-6
            status, body = await api.call("PUT", "/api/v1/ports/1/difficulty", ADMIN, json={"start_difficulty": 1.0})
            assert status == 404

            status, body = await api.call("POST", "/api/v1/workers/carol.local/kick", ADMIN,
                                          json={"reason": "maintenance"})
            assert status == 200 and body == {"worker": "carol.local", "connections": 1}
            await wait_for(lambda: miners["carol.local"].disconnected, 5, "the kicked miner to be disconnected")
            status, body = await api.call("POST", "/api/v1/workers/carol.local/kick", ADMIN)
            assert status == 404

            status, body = await api.call("POST", "/api/v1/bans", ADMIN,
                                          json={"target": us_ips[0], "duration_seconds": 600, "reason": "test"})
            assert status == 201 and body["target"] == us_ips[0] and body["source"] == "admin"
            await wait_for(lambda: miners["bob.us"].disconnected, 5, "the banned miner to be disconnected")
            bans = await api.get("/api/v1/bans")
            assert [(b["target"], b["source"]) for b in bans] == [(us_ips[0], "admin")]
            status, body = await api.call("DELETE", f"/api/v1/bans?target={us_ips[0]}", ADMIN)
            assert status == 200 and body["removed"] is True
            status, body = await api.call("DELETE", f"/api/v1/bans?target={us_ips[0]}", ADMIN)
            assert status == 404
            assert await api.get("/api/v1/bans") == []

            status, body = await api.call("POST", "/api/v1/workers/alice/reconnect", ADMIN, json={"wait_seconds": 1})
            assert status == 200 and body["connections"] == 2                  # an account names its workers

            status, body = await api.call("POST", "/api/v1/reload", ADMIN)
            assert status == 200 and body["ok"] is True
            # The file still says 2e-6: the reload puts the file's value back in force.
            assert body["applied"] == ["stratum.ports[0].start_difficulty"] and body["requires_restart"] == []

            status, body = await api.call("PUT", "/api/v1/price", ADMIN, json={"btc_usd": 65000.0})
            assert status == 200 and body["price_source"] == "fed"
            overview = await api.get("/api/v1/overview")
            assert overview["revenue"]["btc_usd_price"] == 65000.0

