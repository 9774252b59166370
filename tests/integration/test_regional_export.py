"""A fleet with a known regional distribution, connecting through PROXY v2 headers that carry real public
IPs drawn per country from the real database, mines on the live pool; the research exports built from
the ledger's batches must show that distribution (within 0.5 percentage points).

Each miner submits a fixed number of shares at a share difficulty so low that every hash meets it, so
the credited difficulty per country is known exactly and the test measures the pipeline, not luck:
PROXY parsing -> geo tag per connection -> ShareRecord -> ledger batch -> geo rollup -> export.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import random
from pathlib import Path

import msgspec
import redis.asyncio as aioredis

from pool.geo import draw_ips, export
from pool.sim.proxy_header import proxy_v2
from tests.integration.support import base_config, flushed, running_pool, stratum_port, write_config

# Country -> shares per miner; 10 miners (accounts) per country so every cell passes k = 10.
DISTRIBUTION = {"US": 40, "CN": 25, "DE": 20, "KZ": 15}
MINERS_PER_COUNTRY = 10
SCALE = 2          # shares per miner = weight x SCALE
SHARE_DIFFICULTY = 1e-12   # every hash meets it (the target is capped at 2^256 - 1)


async def _mine(host: str, port: int, public_ip: str, username: str, shares: int) -> int:
    """A minimal firmware-like client: PROXY v2, subscribe, authorize, then `shares` distinct submits."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(proxy_v2(public_ip, 40000, host, port))
    writer.write(b'{"id":1,"method":"mining.subscribe","params":["bmminer/2.0.0"]}\n')
    writer.write(msgspec.json.encode({"id": 2, "method": "mining.authorize", "params": [username, "x"]}) + b"\n")
    extranonce2_size, job = 0, None
    while job is None:
        message = msgspec.json.decode(await asyncio.wait_for(reader.readline(), 10))
        if message.get("id") == 1:
            extranonce2_size = message["result"][2]
        elif message.get("id") == 2:
            assert message["result"] is True, message
        elif message.get("method") == "mining.notify":
            job = message["params"]
    for n in range(shares):
        extranonce2 = n.to_bytes(extranonce2_size, "little").hex()
        writer.write(msgspec.json.encode({"id": 100 + n, "method": "mining.submit",
                                          "params": [username, job[0], extranonce2, job[7], "00000000"]}) + b"\n")
    await writer.drain()
    accepted = 0
    replies = 0
    while replies < shares:
        message = msgspec.json.decode(await asyncio.wait_for(reader.readline(), 10))
        if isinstance(message.get("id"), int) and message["id"] >= 100:
            replies += 1
            accepted += message["result"] is True
    writer.close()
    return accepted


async def test_exports_match_the_fleet_distribution(redis_url: str, tmp_path: Path) -> None:
    data = base_config(redis_url, tmp_path)
    data["chain"]["devnet"]["nbits"] = "1d00ffff"          # difficulty 1: no block in a few thousand shares
    data["admin"]["enabled"] = False
    data["stratum"]["limits"].update(submits_per_second=10_000.0, submit_burst=10_000.0)
    data["stratum"]["ports"][0].update(start_difficulty=SHARE_DIFFICULTY, min_difficulty=SHARE_DIFFICULTY)
    data["ledger"]["bucket_units"] = 10**12
    rng = random.Random(7)
    ips = {country: draw_ips(country, MINERS_PER_COUNTRY, rng) for country in DISTRIBUTION}
    async with running_pool(write_config(tmp_path / "pool.toml", data)) as app:
        port = stratum_port(app)
        accepted = await asyncio.gather(*(
            _mine("127.0.0.1", port, ips[country][i], f"{country.lower()}{i}.rig", weight * SCALE)
            for country, weight in DISTRIBUTION.items() for i in range(MINERS_PER_COUNTRY)))
        assert sum(accepted) == sum(DISTRIBUTION.values()) * SCALE * MINERS_PER_COUNTRY
        await flushed(app)

        client = aioredis.Redis.from_url(redis_url, decode_responses=False)
        today = dt.datetime.now(dt.UTC).date()
        try:
            report = json.loads((await export(client, app.config.geo, "regions-json", "daily", today, today,
                                              prefix="gs")).body)
            ccaf = (await export(client, app.config.geo, "ccaf-countries", "daily", today, today,
                                 prefix="gs")).body.decode()
        finally:
            await client.aclose()

    total = sum(DISTRIBUTION.values())
    period = report["periods"][0]
    got = {r["country_iso"]: 100 * r["share_of_pool"] for r in period["rows"] if r["level"] == "country"}
    for country, weight in DISTRIBUTION.items():
        assert abs(got[country] - 100 * weight / total) <= 0.5, (country, got)
    assert set(got) == set(DISTRIBUTION)                   # nothing unknown, private or folded
    assert period["share_geolocated"] == 1.0
    # The devnet's fixed trivial difficulty says nothing of a network hashrate: no share of it.
    assert period["network_samples"] == 0 and period["pool_share_of_network"] is None
    assert all(r["share_of_network"] is None for r in period["rows"])
    assert [d["build_date"] for d in period["databases"]] == ["2026-06-05"]   # DB-IP City Lite, June 2026 (npm)
    rows = list(csv.reader(io.StringIO(ccaf)))
    assert rows[0] == ["date", "country", "daily_hashrate_%", "daily_absolute_hashrate_EH/S"]
    listed = {row[1]: float(row[2].rstrip("%")) for row in rows[1:]}
    assert listed["United States"] == 40.0 and listed["China"] == 25.0 and listed["Germany"] == 20.0
