"""What each endpoint answers, checked against the sample pool's hand-computed figures."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import Any

import pytest

from pool.admin.interfaces import BlockInfo, NetworkInfo
from tests.admin.conftest import ADMIN, READ, Running, make_config, start_admin
from tests.admin.providers import InMemoryPool

TH = 1e12
HOUR_RATE = 2**48               # sample pool, 1 h window: 225 x 2^20 x 2^32 / 3600 = 2^48 H/s


async def get(admin: Running, path: str, headers: dict[str, str] = READ) -> tuple[int, Any]:
    async with admin.request("GET", path, headers=headers) as response:
        return response.status, await response.json()


async def send(admin: Running, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with admin.request(method, path, json=body, headers=ADMIN) as response:
        return response.status, await response.json()


async def test_overview(admin: Running) -> None:
    status, o = await get(admin, "/api/v1/overview")
    assert status == 200
    assert o["pool"]["hashrate"]["1h"]["hashrate"] == HOUR_RATE
    assert o["pool"]["workers"] == 5 and o["pool"]["connections"] == 6 and o["pool"]["accounts"] == 4
    assert o["shares"] == {
        "window_seconds": 3600, "accepted": 270, "accepted_difficulty": 225 * 2**20, "rejected_total": 8,
        "rejected_by_reason": {"stale": 5, "duplicate": 2, "low-difficulty": 1},
        "stale_rate": pytest.approx(5 / 278), "observed_seconds": 0.0, "rejected_seconds": 0.0,
    }
    assert o["blocks"]["found"] == 4
    # The round in progress: its effort is its accepted difficulty over the network's (1e14).
    round_ = o["round"]
    in_round = admin.data.round_shares()
    assert round_["shares"] == len(in_round) > 0
    assert round_["accepted_difficulty"] == pytest.approx(sum(s.difficulty for s in in_round))
    assert round_["effort"] == pytest.approx(round_["accepted_difficulty"] / 1e14)
    net = o["network"]
    assert net["height"] == 880_000 and net["difficulty"] == 1e14
    assert net["hashrate"] == pytest.approx(1e14 * 2**32 / 600)
    # The chain's own figure (getnetworkhashps): 10 blocks' work over their 6000 s.
    assert net["hashrate_from_blocks"] == pytest.approx(10 * 1e14 * 2**32 / 6000) and net["blocks_counted"] == 10
    assert net["note"] == ""
    adj = o["next_adjustment"]
    assert adj["blocks_left"] == 992 and adj["next_retarget_height"] == 880_992
    assert adj["projected_change_percent"] == pytest.approx(11.166253101736977)
    rev = o["revenue"]
    assert rev["subsidy_btc"] == 3.125 and rev["average_fees_btc"] == pytest.approx(0.03)
    assert rev["hashprice_btc_per_ph_day"] == pytest.approx(6.346777081489563e-4)
    assert rev["hashprice_usd_per_ph_day"] is None and rev["price_source"] is None
    # Blocks 879,990 and 879,500 fall in the last 1008 (878,993..880,000); 879,100 was orphaned.
    share = o["pool_share"]
    assert share["recent_blocks_found"] == 2 and share["of_recent_blocks"] == pytest.approx(2 / 1008)
    assert share["of_network_hashrate"] == pytest.approx(o["pool"]["hashrate"]["24h"]["hashrate"] / net["hashrate"])


async def test_price_feed_turns_on_usd(admin: Running) -> None:
    status, price = await get(admin, "/api/v1/price")
    assert status == 200 and price == {"btc_usd_price": None, "price_source": None, "price_updated_at": None}
    status, price = await send(admin, "PUT", "/api/v1/price", {"btc_usd": 100_000})
    assert status == 200 and price["btc_usd_price"] == 100_000 and price["price_source"] == "fed"
    _, o = await get(admin, "/api/v1/overview")
    assert o["revenue"]["hashprice_usd_per_ph_day"] == pytest.approx(63.46777081489563)


async def test_configured_price(pool_data: InMemoryPool) -> None:
    import aiohttp

    server = await start_admin(pool_data, make_config(btc_usd_price=50_000.0))
    try:
        async with aiohttp.ClientSession() as session, session.get(
            server.url + "/api/v1/overview", headers=READ
        ) as response:
            rev = (await response.json())["revenue"]
        assert rev["price_source"] == "config"
        assert rev["hashprice_usd_per_ph_day"] == pytest.approx(31.733885407447815)
    finally:
        await server.stop()


async def test_no_adjustment_on_a_chain_without_retargets(admin: Running) -> None:
    import msgspec

    admin.data.network_info = msgspec.structs.replace(admin.data.network_info, chain="regtest", retargets=False)
    _, o = await get(admin, "/api/v1/overview")
    assert o["next_adjustment"] is None


async def test_history(admin: Running) -> None:
    status, h = await get(admin, "/api/v1/history?window=6h")
    assert status == 200
    assert h["window_seconds"] == 21_600 and h["step_seconds"] == 450
    full = [p["hashrate"] for p in h["points"][1:-1]]
    assert full and all(rate > 200 * TH for rate in full)


async def test_workers_list_search_sort_page(admin: Running) -> None:
    _, page = await get(admin, "/api/v1/workers?sort=name&order=asc")
    assert page["total"] == 5
    assert [w["name"] for w in page["items"]] == ["alice.rig1", "alice.rig2", "bob.s19", "carol.m30", "dave.avalon"]
    _, page = await get(admin, "/api/v1/workers?search=RIG&sort=hashrate&order=desc&limit=1")
    assert page["total"] == 2 and [w["name"] for w in page["items"]] == ["alice.rig1"]
    assert page["items"][0]["hashrate"]["1h"]["hashrate"] == pytest.approx(2**52 / 60)
    _, page = await get(admin, "/api/v1/workers?account=alice&sort=name&order=asc&offset=1")
    assert [w["name"] for w in page["items"]] == ["alice.rig2"]


async def test_worker_detail(admin: Running) -> None:
    status, w = await get(admin, "/api/v1/workers/dave.avalon?history=1h")
    assert status == 200
    assert w["summary"]["connections"] == 2 and w["summary"]["country"] == "KZ"
    assert w["history"]["window_seconds"] == 3600
    assert sum(p["hashrate"] for p in w["history"]["points"]) * w["history"]["step_seconds"] == pytest.approx(
        60 * 2**18 * 2**32)
    status, w = await get(admin, "/api/v1/workers/alice.rig1")
    assert w["rejected_by_reason"] == {"stale": 5}
    status, body = await get(admin, "/api/v1/workers/nobody.here")
    assert status == 404 and body["reason"] == "no worker named 'nobody.here'"


async def test_accounts(admin: Running) -> None:
    _, page = await get(admin, "/api/v1/accounts?sort=name&order=asc")
    assert [a["account"] for a in page["items"]] == ["alice", "bob", "carol", "dave"]
    assert page["items"][0]["workers"] == 2
    status, a = await get(admin, "/api/v1/accounts/alice")
    assert status == 200 and [w["name"] for w in a["workers"]] == ["alice.rig1", "alice.rig2"]
    assert a["summary"]["hashrate"]["1h"]["hashrate"] == pytest.approx(2**52 / 60 * 1.5)
    status, _ = await get(admin, "/api/v1/accounts/zed")
    assert status == 404


async def test_blocks_newest_first_and_paged(admin: Running) -> None:
    _, blocks = await get(admin, "/api/v1/blocks")
    assert [b["height"] for b in blocks] == [879_990, 879_500, 879_100, 870_000]
    _, blocks = await get(admin, "/api/v1/blocks?limit=2&before=879990")
    assert [b["height"] for b in blocks] == [879_500, 879_100]


async def test_regions_by_country_and_subdivision(admin: Running) -> None:
    _, r = await get(admin, "/api/v1/regions?level=country&window=1h")
    assert "DB-IP" in r["attribution"] and "CC BY 4.0" in r["attribution"]
    rates = {row["country"]: row["hashrate"] for row in r["items"]}
    assert rates["US"] == pytest.approx(2**52 / 60 * 1.5)   # GA + TX
    assert rates["KZ"] == pytest.approx(2**52 / 60 / 4)
    assert r["items"][0]["country"] == "US"
    assert sum(row["share"] for row in r["items"]) == pytest.approx(1.0)
    assert r["total_hashrate"] == pytest.approx(HOUR_RATE)
    _, r = await get(admin, "/api/v1/regions?level=subdivision")
    assert {(row["country"], row["subdivision"]) for row in r["items"]} == {
        ("US", "GA"), ("US", "TX"), ("CA", "QC"), ("DE", "BY"), ("KZ", "")}
    assert r["folded_regions"] == 0


async def test_anonymous_regions_fold_small_regions(pool_data: InMemoryPool) -> None:
    import aiohttp

    server = await start_admin(pool_data, make_config(anonymous=["dashboard"], anonymous_region_min_miners=2))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/api/v1/regions?level=country") as response:
                anon = await response.json()
            async with session.get(server.url + "/api/v1/regions?level=subdivision") as response:
                anon_sub = await response.json()
            async with session.get(server.url + "/api/v1/regions?level=subdivision", headers=READ) as response:
                full = await response.json()
        # Only the US has two miners; CA, DE and KZ fold into Other.
        assert [(row["country"], row["miners"]) for row in anon["items"]] == [("US", 2), ("XX", 3)]
        assert anon["folded_regions"] == 3
        # By subdivision, GA and TX (one miner each) fold into "US Other" (2 miners: kept).
        assert {(row["country"], row["subdivision"]) for row in anon_sub["items"]} == {("US", "Other"), ("XX", "")}
        assert full["folded_regions"] == 0 and len(full["items"]) == 5
        assert anon_sub["total_hashrate"] == pytest.approx(full["total_hashrate"])
    finally:
        await server.stop()


async def test_exports(admin: Running) -> None:
    status, kinds = await get(admin, "/api/v1/exports")
    assert status == 200 and [k["name"] for k in kinds] == ["ccaf-countries", "regions"]
    today = dt.datetime.now(dt.UTC).date()
    start, end = today - dt.timedelta(days=3), today + dt.timedelta(days=1)
    path = f"/api/v1/exports/ccaf-countries?period=monthly&start={start}&end={end}&format=csv"
    async with admin.request("GET", path, headers=READ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        # The whole months the inclusive range touches.
        month_end = (end.replace(day=1) + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="geostratum-ccaf-countries-monthly-{start.replace(day=1)}-{month_end}.csv"')
        assert response.headers["X-Geostratum-Range"] == f"monthly periods {start.replace(day=1)}..{month_end}"
        rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == ["date", "country", "monthly_hashrate_%", "monthly_absolute_hashrate_EH/S"]
    assert rows[1][1] == "United States"
    status, body = await get(admin, "/api/v1/exports/regions?start=2001-01-01&end=2001-02-01")
    assert status == 404 and body["reason"] == "no shares between 2001-01-01 and 2001-02-01"


async def test_bans_add_list_remove(admin: Running) -> None:
    status, entry = await send(admin, "POST", "/api/v1/bans",
                               {"target": "203.0.113.77/24", "duration_seconds": 3600, "reason": "flood"})
    assert status == 201 and entry["target"] == "203.0.113.0/24"
    assert entry["expires_at"] == pytest.approx(entry["created_at"] + 3600)
    status, entry = await send(admin, "POST", "/api/v1/bans", {"target": "2001:db8::1"})
    assert status == 201 and entry["target"] == "2001:db8::1/128" and entry["expires_at"] is None
    _, bans = await get(admin, "/api/v1/bans")
    assert {b["target"] for b in bans} == {"203.0.113.0/24", "2001:db8::1/128"}
    status, removed = await send(admin, "DELETE", "/api/v1/bans?target=203.0.113.0/24")
    assert status == 200 and removed == {"target": "203.0.113.0/24", "removed": True}
    status, body = await send(admin, "DELETE", "/api/v1/bans?target=203.0.113.0/24")
    assert status == 404 and body["reason"] == "no ban on 203.0.113.0/24"


async def test_kick_and_reconnect(admin: Running) -> None:
    status, result = await send(admin, "POST", "/api/v1/workers/dave.avalon/reconnect",
                                {"host": "pool2.example.org", "port": 3334, "wait_seconds": 2})
    assert status == 200 and result == {"worker": "dave.avalon", "connections": 2}
    assert admin.data.reconnected[0][1].host == "pool2.example.org"
    status, result = await send(admin, "POST", "/api/v1/workers/dave.avalon/kick")
    assert status == 200 and result["connections"] == 2 and admin.data.kicked == [("dave.avalon", "")]
    status, body = await send(admin, "POST", "/api/v1/workers/dave.avalon/kick", {"reason": "again"})
    assert status == 404 and body["reason"] == "worker 'dave.avalon' is not connected"
    # Others stay connected.
    _, o = await get(admin, "/api/v1/overview")
    assert o["pool"]["connections"] == 4


async def test_port_difficulty(admin: Running) -> None:
    _, ports = await get(admin, "/api/v1/ports")
    assert ports == [{"port": 3333, "start_difficulty": 16384, "min_difficulty": 1024, "max_difficulty": 1e12,
                      "connections": 0}]
    status, port = await send(admin, "PUT", "/api/v1/ports/3333/difficulty",
                              {"start_difficulty": 65536, "min_difficulty": 4096})
    assert status == 200 and port["start_difficulty"] == 65536 and port["min_difficulty"] == 4096
    status, body = await send(admin, "PUT", "/api/v1/ports/3333/difficulty", {"max_difficulty": 1e16})
    assert status == 409 and body["reason"] == "max_difficulty above what this pool allows (1e15)"
    status, body = await send(admin, "PUT", "/api/v1/ports/4444/difficulty", {"start_difficulty": 1})
    assert status == 404 and body["reason"] == "no stratum port 4444"


async def test_reload(admin: Running) -> None:
    status, result = await send(admin, "POST", "/api/v1/reload")
    assert status == 200 and result["ok"] is True and admin.data.reloads == 1
    assert admin.data.ports[3333].start_difficulty == 20000.0
    assert admin.data.config_path is not None
    admin.data.config_path.write_text("[stratum]\nports = [{ port = 70000 }]\n")
    status, body = await send(admin, "POST", "/api/v1/reload")
    assert status == 422
    assert body == {"status": 422, "error": "config_invalid",
                    "reason": "stratum.ports[0].port: must be 0..65535, got 70000"}
    assert admin.data.reloads == 1


async def test_health(admin: Running) -> None:
    status, h = await get(admin, "/api/v1/health")
    assert status == 200 and h["ok"] is True
    from pool.admin.interfaces import ComponentHealth

    admin.data.components[0] = ComponentHealth(name="redis", ok=False, detail="connection refused")
    status, h = await get(admin, "/api/v1/health")
    assert status == 503 and h["components"][0] == {"name": "redis", "ok": False, "detail": "connection refused"}


async def test_slow_provider_answers_504(pool_data: InMemoryPool) -> None:
    import aiohttp

    pool_data.delay = 0.5
    server = await start_admin(pool_data, make_config(request_timeout_seconds=0.05))
    try:
        async with aiohttp.ClientSession() as session, session.get(
            server.url + "/api/v1/workers", headers=READ
        ) as response:
            assert response.status == 504
            assert (await response.json())["reason"] == "a pool component did not answer in time"
    finally:
        await server.stop()


async def test_public_resources(admin: Running) -> None:
    async with admin.request("GET", "/") as response:
        assert response.status == 200 and "Geostratum" in await response.text()
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    async with admin.request("GET", "/static/dashboard.js") as response:
        assert response.status == 200 and response.headers["Content-Type"] == "text/javascript"
    async with admin.request("GET", "/static/..%2Fserver.py") as response:
        assert response.status == 404
    status, settings = await get(admin, "/api/v1/dashboard", headers={})
    assert status == 200 and settings == {"refresh_seconds": 5.0, "anonymous": False}
    status, doc = await get(admin, "/openapi.json", headers={})
    assert status == 200 and doc["openapi"].startswith("3.")


async def test_concurrent_requests_share_the_loop(admin: Running) -> None:
    results = await asyncio.gather(*(get(admin, "/api/v1/overview") for _ in range(20)))
    assert {status for status, _ in results} == {200}


async def test_overview_share_of_recent_blocks_on_a_short_chain(admin: Running) -> None:
    # A 10-block devnet chain whose 10 blocks the pool found: 100 % of the 10 blocks that exist.
    admin.data.network_info = NetworkInfo(chain="devnet", height=10, difficulty=1.0, tip_time=1_000)
    admin.data.blocks_found = [
        BlockInfo(height=h, hash=f"{h:064x}", found_at=float(h), worker="alice.rig1", account="alice",
                  status="confirmed", reward_sat=5_000_000_000, network_difficulty=1.0)
        for h in range(1, 11)
    ]
    status, o = await get(admin, "/api/v1/overview")
    assert status == 200
    share = o["pool_share"]
    assert share["recent_blocks_window"] == 10 and share["recent_blocks_found"] == 10
    assert share["of_recent_blocks"] == 1.0
    # Difficulty means nothing here: no network hashrate and no share of it, and the API says why.
    assert o["network"]["hashrate"] is None and o["network"]["hashrate_from_blocks"] is None
    assert o["network"]["note"].startswith("not meaningful on devnet")
    assert share["of_network_hashrate"] is None
    assert o["revenue"]["hashprice_btc_per_ph_day"] is None and o["revenue"]["hashprice_usd_per_ph_day"] is None
    # A test network whose recent blocks include minimum-difficulty ones: the same.
    admin.data.network_info = NetworkInfo(chain="testnet4", height=10, difficulty=5e6, tip_time=1_000,
                                          recent_block_times=[400, 1_000], recent_block_difficulties=[1.0, 5e6])
    _, o = await get(admin, "/api/v1/overview")
    assert o["network"]["hashrate"] is None and "minimum-difficulty" in o["network"]["note"]
    assert o["revenue"]["hashprice_btc_per_ph_day"] is None
