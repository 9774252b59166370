"""End to end: a simulated fleet (real IPs from the real database, tagged by the locator as the
server does after a PROXY header) -> ShareRecords -> rollup ops -> real redis-server -> exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from pool.config.geo import GeoConfig
from pool.geo import GeoLocator, GeoRollup, NetworkDifficultyRecorder, apply_ops, export, export_many
from pool.shares.hashrate import poisson_bounds
from pool.stratum.events import ShareRecord
from tests.geo.fleet_sim import build_fleet, shares

OCT = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
T_OCT10 = dt.datetime(2026, 10, 10, tzinfo=dt.UTC).timestamp()
T_NOV1 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()


def observed(records: list[ShareRecord], end: float = T_NOV1) -> float:
    """Seconds a period ending at `end` was observed: from the pool's first share (it started then)."""
    return end - min(r.timestamp for r in records)
AFTER = dt.datetime(2026, 11, 5, tzinfo=dt.UTC).timestamp()
NETWORK_DIFFICULTY = 1.2e14
CONFIG = GeoConfig()
# CCAF's published January 2022 country shares, the rest spread over three more countries.
CCAF_2022 = {"US": 37.84, "CN": 21.11, "KZ": 13.22, "CA": 6.48, "RU": 4.66, "DE": 6.0, "MY": 5.0,
             "IR": 3.0, "NO": 2.69}


async def ingest(redis: aioredis.Redis, rollup: GeoRollup, records: list[ShareRecord], batch: int = 5000) -> None:
    for start in range(0, len(records), batch):
        await apply_ops(redis, rollup.ops(records[start:start + batch], f"b{start}"))


async def record_network(redis: aioredis.Redis, days: int = 31) -> None:
    recorder = NetworkDifficultyRecorder(redis, GeoRollup(CONFIG))
    for day in range(days):
        await recorder.record_network_difficulty(NETWORK_DIFFICULTY, at=T_OCT10 + (day - 9) * 86400 + 7200)


def parse_csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))[1:]


async def get(redis: aioredis.Redis, layout: str, period: str = "monthly", span=OCT, config=CONFIG):
    return await export(redis, config, layout, period, *span, now=AFTER)


def realised(records: list[ShareRecord], key=lambda r: r.country) -> dict[str, float]:
    totals: Counter[str] = Counter()
    for r in records:
        totals[key(r)] += r.difficulty
    whole = sum(totals.values())
    return {k: 100 * v / whole for k, v in totals.items()}


async def test_country_shares_match_the_fleet_distribution(locator: GeoLocator, aredis: aioredis.Redis) -> None:
    rng = random.Random(11)
    fleet = build_fleet(CCAF_2022, 20, locator, rng, total_rate=1.5)
    records = shares(fleet, T_OCT10, 6 * 3600, rng)
    await ingest(aredis, GeoRollup(CONFIG, lambda: locator.databases), records)
    await record_network(aredis)

    result = await get(aredis, "ccaf-countries")
    assert result.content_type.startswith("text/csv")
    assert result.body.startswith(b"date,country,monthly_hashrate_%,monthly_absolute_hashrate_EH/S\r\n")
    rows = parse_csv(result.body)
    names = {"US": "United States", "CN": "China", "KZ": "Kazakhstan", "CA": "Canada", "RU": "Russian Federation",
             "DE": "Germany", "MY": "Malaysia", "IR": "Iran, Islamic Rep.", "NO": "Norway"}
    got = {row[1]: float(row[2].rstrip("%")) for row in rows}
    actual = realised(records)
    weight = sum(CCAF_2022.values())
    for iso, name in names.items():
        assert got[name] == pytest.approx(100 * CCAF_2022[iso] / weight, abs=0.5), name
        assert got[name] == pytest.approx(actual[iso], abs=0.006), name     # exact up to rounding
    assert [row[0] for row in rows] == ["2026-10-01"] * len(names)
    shares_desc = [float(row[2].rstrip("%")) for row in rows]
    assert shares_desc == sorted(shares_desc, reverse=True)
    assert b'"Iran, Islamic Rep."' in result.body
    # Absolute column: the share applied to the network hashrate implied by difficulty, in EH/s.
    network = NETWORK_DIFFICULTY * 2**32 / 600
    us = next(row for row in rows if row[1] == "United States")
    assert float(us[3]) == pytest.approx(round(actual["US"] / 100 * network / 1e18, 2), abs=0.011)

    report = json.loads((await get(aredis, "regions-json")).body)
    period = report["periods"][0]
    total_difficulty = sum(r.difficulty for r in records)
    assert period["pool_difficulty"] == pytest.approx(total_difficulty)
    # The pool was first seen on Oct 10: the month's average divides by the seconds since then.
    assert period["period_seconds"] == pytest.approx(observed(records))
    assert period["period_coverage"] == pytest.approx(observed(records) / (31 * 86400))
    assert period["pool_hashrate"] == pytest.approx(total_difficulty * 2**32 / observed(records))
    # Its 95 % interval from the share count: N shares scale the bounds by lower(N)/N .. upper(N)/N.
    n = period["accepted_shares"]
    assert n == len(records)
    assert period["pool_hashrate_low"] == pytest.approx(period["pool_hashrate"] * poisson_bounds(n)[0] / n)
    assert period["pool_hashrate_high"] == pytest.approx(period["pool_hashrate"] * poisson_bounds(n)[1] / n)
    assert period["network_hashrate"] == pytest.approx(network)
    assert period["pool_share_of_network"] == pytest.approx(period["pool_hashrate"] / network)
    assert period["share_geolocated"] == pytest.approx(1.0)
    assert period["accepted_shares"] == len(records)
    # No ASN database in use: hosting is unknown (null), not 0 %, in every figure that carries it.
    assert period["hosting_source"] is None and period["hosting_share"] is None
    assert {r["hosting_share"] for r in period["rows"]} == {None}
    rich = (await get(aredis, "regions-csv")).body.decode()
    assert "# hosting_source: none: hosting_share unknown (no ASN database)" in rich
    assert "hosting_share unknown (no ASN database);" in rich
    header, first = [line.split(",") for line in rich.splitlines() if not line.startswith("#")][:2]
    assert first[header.index("hosting_share")] == ""
    assert period["databases"] == [{"role": "location", "type": "DBIP-City-Lite", "build_date": "2026-06-05",
                                    "share": pytest.approx(1.0)}]
    assert report["privacy"] == {"min_miners": 10, "dominance_n": 2, "dominance_percent": 85.0,
                                 "miners_rounding": 10, "top_read_depth": 32, "top_miners_kept": 1000}
    assert "CC BY 4.0" in report["attribution"]
    countries = {r["country_iso"]: r for r in period["rows"] if r["level"] == "country"}
    assert countries["US"]["miners"] == 20 and countries["US"]["country_name"] == "United States"
    assert countries["US"]["share_of_network"] == pytest.approx(
        countries["US"]["share_of_pool"] * period["pool_share_of_network"])


SUBDIVISIONS = {"US/Georgia": 30.76, "US/Texas": 11.22, "US/Kentucky": 10.93, "US/New York": 9.77,
                "US/California": 7.90, "US/Washington": 29.42,
                "CN/Xinjiang": 35.76, "CN/Sichuan": 29.66, "CN/Inner Mongolia": 18.07, "CN/Yunnan": 16.51}


async def test_ccaf_subdivision_layouts(locator: GeoLocator, aredis: aioredis.Redis) -> None:
    rng = random.Random(12)
    fleet = build_fleet(SUBDIVISIONS, 12, locator, rng, total_rate=1.5)
    records = shares(fleet, T_OCT10, 6 * 3600, rng)
    await ingest(aredis, GeoRollup(CONFIG, lambda: locator.databases), records)

    us = await get(aredis, "ccaf-us")
    assert us.body.startswith(b"Date,State,US hashrate by state\r\n")
    china = await get(aredis, "ccaf-china")
    assert china.body.startswith(b"Date,Province,Share of Chinese hashrate\r\n")
    for body, country in ((us.body, "US"), (china.body, "CN")):
        rows = parse_csv(body)
        got = {row[1]: float(row[2]) for row in rows}
        mine = {k.split("/")[1]: v for k, v in SUBDIVISIONS.items() if k.startswith(country)}
        assert set(got) == set(mine)
        for name, expected in mine.items():
            assert got[name] == pytest.approx(expected * 100 / sum(mine.values()), abs=0.5), name
        assert sum(got.values()) == pytest.approx(100, abs=0.05)

    doc = json.loads((await get(aredis, "ccaf-contribution")).body)
    items = doc["data"]
    assert set(items[0]) == {"period_start_date", "period", "country", "province", "average_hashrate", "unit"}
    assert {i["country"] for i in items if i["province"] is None} == {"United States", "China"}
    assert {i["province"] for i in items if i["country"] == "China"} == {None, *(k[3:] for k in SUBDIVISIONS
                                                                            if k.startswith("CN"))}
    assert {i["period"] for i in items} == {"monthly"} and {i["period_start_date"] for i in items} == {"2026-10-01"}
    unit = items[0]["unit"]
    scale = {"th/s": 1e12, "ph/s": 1e15, "eh/s": 1e18}[unit]
    us_total = sum(r.difficulty for r in records if r.country == "US") * 2**32 / observed(records) / scale
    us_item = next(i for i in items if i["country"] == "United States" and i["province"] is None)
    assert us_item["average_hashrate"] == pytest.approx(us_total, rel=1e-4)


async def test_empty_period(aredis: aioredis.Redis) -> None:
    countries = await get(aredis, "ccaf-countries")
    assert countries.body == b"date,country,monthly_hashrate_%,monthly_absolute_hashrate_EH/S\r\n"
    assert (await get(aredis, "ccaf-china")).body == b"Date,Province,Share of Chinese hashrate\r\n"
    assert (await get(aredis, "ccaf-us")).body == b"Date,State,US hashrate by state\r\n"
    assert json.loads((await get(aredis, "ccaf-contribution")).body) == {"data": []}
    report = json.loads((await get(aredis, "regions-json", "weekly")).body)
    assert [p["period_start"] for p in report["periods"]] == ["2026-09-28", "2026-10-05", "2026-10-12",
                                                              "2026-10-19", "2026-10-26"]
    for period in report["periods"]:
        assert period["rows"] == [] and period["pool_difficulty"] == 0 and period["network_hashrate"] is None
        assert period["pool_share_of_network"] is None and period["databases"] == []
    svg = await get(aredis, "chart-svg")
    assert svg.content_type == "image/svg+xml"
    assert ET.fromstring(svg.body).tag.endswith("svg")


async def test_unknown_and_private_addresses_are_reported(locator: GeoLocator, aredis: aioredis.Redis) -> None:
    rng = random.Random(13)
    # 3ffe::/16 (the returned 6bone prefix): global, and no record in the database.
    ips = {"XP": [f"10.0.{i}.7" for i in range(12)], "ZZ": [f"3ffe::{i + 1:x}" for i in range(12)]}
    fleet = build_fleet({"US": 60.0, "XP": 25.0, "ZZ": 15.0}, 12, locator, rng, total_rate=0.5, ips=ips)
    records = shares(fleet, T_OCT10, 4 * 3600, rng)
    assert {r.country for r in records} == {"US", "XP", "ZZ"}
    await ingest(aredis, GeoRollup(CONFIG, lambda: locator.databases), records)
    rows = {row[1]: float(row[2].rstrip("%")) for row in parse_csv((await get(aredis, "ccaf-countries")).body)}
    assert rows["Private or reserved"] == pytest.approx(25.0, abs=0.5)
    assert rows["Unknown"] == pytest.approx(15.0, abs=0.5)
    period = json.loads((await get(aredis, "regions-json")).body)["periods"][0]
    assert period["share_geolocated"] == pytest.approx(0.60, abs=0.005)
    assert period["unknown_share"] == pytest.approx(0.15, abs=0.005)
    assert period["private_share"] == pytest.approx(0.25, abs=0.005)


async def test_ipv6_fleet(locator: GeoLocator, aredis: aioredis.Redis) -> None:
    rng = random.Random(14)
    target = {"US": 40.0, "DE": 25.0, "CN": 20.0, "JP": 15.0}
    fleet = build_fleet(target, 12, locator, rng, ipv6=True, total_rate=0.8)
    assert all(":" in m.ip for m in fleet)
    records = shares(fleet, T_OCT10, 4 * 3600, rng)
    await ingest(aredis, GeoRollup(CONFIG, lambda: locator.databases), records)
    period = json.loads((await get(aredis, "regions-json")).body)["periods"][0]
    got = {r["country_iso"]: 100 * r["share_of_pool"] for r in period["rows"] if r["level"] == "country"}
    for iso, share in target.items():
        assert got[iso] == pytest.approx(share, abs=0.5)


async def test_database_swap_mid_period_keeps_both_build_dates(geo_dbs: dict[str, Path],
                                                               aredis: aioredis.Redis) -> None:
    locator = GeoLocator(GeoConfig())
    rollup = GeoRollup(CONFIG, lambda: locator.databases)
    rng = random.Random(15)
    before = build_fleet({"US": 100.0}, 12, locator, rng, total_rate=0.3)
    await ingest(aredis, rollup, shares(before, T_OCT10, 3 * 3600, rng))
    locator.reload(GeoConfig(city_db=str(geo_dbs["city"])))
    after = build_fleet({"CA": 100.0}, 12, locator, rng, total_rate=0.3,
                        ips={"CA": [f"8.8.8.{i + 1}" for i in range(12)]})
    assert {m.tag for m in after} == {("CA", "Quebec", False)}   # the new release moved 8.8.8.0/24
    await ingest(aredis, rollup, shares(after, T_OCT10 + 10 * 86400, 3 * 3600, rng))

    period = json.loads((await get(aredis, "regions-json")).body)["periods"][0]
    dbs = {(d["type"], d["build_date"]): d["share"] for d in period["databases"]}
    assert set(dbs) == {("DBIP-City-Lite", "2026-06-05"), ("GeoLite2-City", "2026-10-15")}
    assert sum(dbs.values()) == pytest.approx(1.0)
    assert dbs[("GeoLite2-City", "2026-10-15")] == pytest.approx(0.5, abs=0.05)
    rich = (await get(aredis, "regions-csv")).body.decode()
    assert "DBIP-City-Lite built 2026-06-05" in rich and "GeoLite2-City built 2026-10-15" in rich
    assert "DB-IP" in rich and "GeoLite2 data created by MaxMind" in rich
    # Daily exports keep each day's own database.
    daily = json.loads((await get(aredis, "regions-json", "daily")).body)["periods"]
    by_day = {p["period_start"]: [d["type"] for d in p["databases"]] for p in daily if p["databases"]}
    assert by_day == {"2026-10-10": ["DBIP-City-Lite"], "2026-10-20": ["GeoLite2-City"]}


async def test_suppression_and_folding(locator: GeoLocator, aredis: aioredis.Redis) -> None:
    rng = random.Random(16)
    fleet = build_fleet({"US": 40.0, "CN": 30.0, "MY": 6.0, "IR": 8.0}, 30, locator, rng, total_rate=0.5)
    fleet = [m for m in fleet if m.tag[0] in ("US", "CN")] + \
        [m for m in fleet if m.tag[0] == "MY"][:3] + [m for m in fleet if m.tag[0] == "IR"][:4]
    # Kazakhstan: 12 miners, but one of them has 80 times the hashrate of each other one (88%).
    kz = build_fleet({"KZ": 1.0}, 12, locator, rng, total_rate=0.006)
    kz[0].rate = 0.04
    records = shares(fleet + kz, T_OCT10, 4 * 3600, rng)
    await ingest(aredis, GeoRollup(CONFIG, lambda: locator.databases), records)

    period = json.loads((await get(aredis, "regions-json")).body)["periods"][0]
    countries = {r["country_iso"]: r for r in period["rows"] if r["level"] == "country"}
    assert set(countries) == {"US", "CN", "Other"}
    actual = realised(records)
    other = countries["Other"]
    assert other["folded"] and other["country_name"] == "Other"
    assert 100 * other["share_of_pool"] == pytest.approx(actual["MY"] + actual["IR"] + actual["KZ"], abs=1e-6)
    folding = period["folding"]
    assert folding["global_share"] == pytest.approx(other["share_of_pool"])
    subdivisions_folded = len({(r.country, r.subdivision) for r in records if r.country in ("MY", "IR", "KZ")})
    assert folding["global_cells"] == subdivisions_folded
    # US and CN states with fewer than 10 miners fold into each country's Other.
    assert folding["within_country_cells"] > 0
    for iso in ("US", "CN"):
        items = [r for r in period["rows"] if r["level"] == "subdivision" and r["country_iso"] == iso]
        assert sum(r["share_of_country"] for r in items) == pytest.approx(1.0)
        assert all(r["miners"] >= 10 for r in items)
    rich = (await get(aredis, "regions-csv")).body.decode()
    assert f"folded_global {subdivisions_folded} cells" in rich
    ccaf = {row[1] for row in parse_csv((await get(aredis, "ccaf-countries")).body)}
    assert ccaf == {"United States", "China", "Other"}
    # The KZ whale dominates Kazakhstan: with k lowered to 3, MY and IR could stand alone, but KZ is
    # still withheld, and its Other takes in the smallest country (MY) to pass the dominance rule.
    lenient = GeoConfig(min_miners=3)
    period = json.loads((await get(aredis, "regions-json", config=lenient)).body)["periods"][0]
    published = {r["country_iso"] for r in period["rows"] if r["level"] == "country"}
    assert published == {"US", "CN", "IR", "Other"}


async def test_firmware_shares_per_country(locator: GeoLocator, aredis: aioredis.Redis) -> None:
    rng = random.Random(17)
    us = build_fleet({"US": 60.0}, 40, locator, rng, total_rate=0.6, agents=("bmminer/2.0", "btminer/3.1"))
    cn = build_fleet({"CN": 40.0}, 30, locator, rng, total_rate=0.4,
                     agents=("Antminer S19", "Antminer S21", "avalon/1246"))
    records = shares(us + cn, T_OCT10, 4 * 3600, rng)
    await ingest(aredis, GeoRollup(CONFIG, lambda: locator.databases), records)
    results = await export_many(aredis, CONFIG, ["firmware-json", "firmware-csv"], "monthly", *OCT, now=AFTER)
    report = json.loads(results[0].body)
    assert "firmware can be replaced" in report["firmware_note"]
    rows = report["periods"][0]["rows"]
    fam = {(r["country_iso"], r["item"]): r["share_of_country"] for r in rows if r["level"] == "family"}
    assert fam[("US", "Bitmain")] == pytest.approx(0.5, abs=0.01)
    assert fam[("US", "MicroBT")] == pytest.approx(0.5, abs=0.01)
    assert fam[("CN", "Bitmain")] == pytest.approx(2 / 3, abs=0.01)
    assert fam[("CN", "Canaan")] == pytest.approx(1 / 3, abs=0.01)
    assert b"country_iso,country_name,family," in results[1].body


async def test_periods_and_chart(locator: GeoLocator, aredis: aioredis.Redis) -> None:
    rng = random.Random(18)
    fleet = build_fleet({"US": 50.0, "CN": 50.0}, 12, locator, rng, total_rate=0.05)
    fleet_records: list[ShareRecord] = []
    for day in (2, 9, 16):
        batch = shares(fleet, T_OCT10 + (day - 10) * 86400, 3600, rng)
        fleet_records += batch
        await ingest(aredis, GeoRollup(CONFIG, lambda: locator.databases), batch)
    daily = json.loads((await get(aredis, "regions-json", "daily")).body)["periods"]
    assert len(daily) == 31 and sum(1 for p in daily if p["rows"]) == 3
    # Nothing was observed on Oct 1; Oct 2 from the first share on; Oct 3 on whole.
    first = min(r.timestamp for r in fleet_records)
    assert daily[0]["period_seconds"] == 0 and daily[0]["period_coverage"] == 0
    assert daily[1]["period_seconds"] == pytest.approx(T_OCT10 - 7 * 86400 - first)
    assert daily[2]["period_seconds"] == 86400 and daily[2]["period_coverage"] == 1.0
    weekly = json.loads((await get(aredis, "regions-json", "weekly")).body)["periods"]
    assert [len(p["rows"]) > 0 for p in weekly] == [True, True, True, False, False]
    svg = await get(aredis, "chart-svg", "weekly")
    root = ET.fromstring(svg.body)
    texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert "United States" in texts and "China" in texts and "CC BY 4.0" in texts
    # An incomplete period is flagged and measured from the pool's first share up to now.
    now = T_OCT10 + 7 * 86400
    current = await export(aredis, CONFIG, "regions-json", "monthly", *OCT, now=now)
    period = json.loads(current.body)["periods"][0]
    assert period["complete"] is False
    assert period["period_seconds"] == pytest.approx(now - first)
    assert period["period_coverage"] == pytest.approx((now - first) / (31 * 86400))


async def test_bad_requests_are_clear_errors(aredis: aioredis.Redis, redis_url: str) -> None:
    with pytest.raises(ValueError, match="unknown layout"):
        await export(aredis, CONFIG, "pdf", "monthly", *OCT)
    with pytest.raises(ValueError, match="unknown period"):
        await export(aredis, CONFIG, "ccaf-countries", "yearly", *OCT)
    with pytest.raises(ValueError, match="max_export_days"):
        await export(aredis, GeoConfig(max_export_days=20), "ccaf-countries", "monthly", *OCT)
    with pytest.raises(ValueError, match="before start"):
        await export(aredis, CONFIG, "ccaf-countries", "monthly", OCT[1], OCT[0])
    decoding = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            await export(decoding, CONFIG, "ccaf-countries", "monthly", *OCT)
    finally:
        await decoding.aclose()
