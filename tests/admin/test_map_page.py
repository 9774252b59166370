"""The map page in headless Chromium over real rollups in a real redis-server: a known fleet (real IPs
from the real database, tagged by the real locator) colours the right countries, US states and Chinese
provinces; the stepper moves between two stored periods; the geometry comes from the npm packages in
node_modules; the SVG and PNG figures come out. Screenshots of both periods are saved (paths printed;
GEOSTRATUM_SCREENSHOT_DIR keeps them elsewhere)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import random
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from pool.admin import AdminServer
from pool.admin.assets import ASSETS, VendorAssets
from pool.admin_wiring.exports import GeoExports
from pool.config.geo import GeoConfig
from pool.geo import GeoLocator, GeoRollup, apply_ops
from tests.admin.conftest import READ, READ_TOKEN, make_config
from tests.admin.providers import InMemoryPool
from tests.admin.test_dashboard import CHROMIUM, Page, chromium, screenshot_dir
from tests.geo.fleet_sim import build_fleet, shares

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"),
              pytest.mark.timeout(180)]

TODAY = dt.datetime.now(dt.UTC).date()
DAY1, DAY2 = TODAY - dt.timedelta(days=2), TODAY - dt.timedelta(days=1)
# Two days with different fleets: every region has 12 one-account miners of equal rate (passes k = 10).
FLEET1 = {"US/Texas": 30.0, "US/Georgia": 20.0, "CN/Sichuan": 30.0, "DE": 20.0}
FLEET2 = {"KZ": 55.0, "CN/Xinjiang": 30.0, "CA": 15.0}   # shares clear of the bin edges
# The page's bins (map.js): < 1, 1-2, 2-5, 5-10, 10-25, >= 25 % -> these colours; grey: no cell.
COLOURS = ["#fee6ce", "#fdd0a2", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603"]
NO_DATA = "#d9dde2"

READ_MAP = """JSON.stringify({
  state: document.body.dataset.state, loads: Number(document.body.dataset.loads || 0),
  period: document.body.dataset.period || "",
  fills: Object.fromEntries(["world", "us", "cn"].map(m => [m, Object.fromEntries(
    [...document.querySelectorAll(`#${m} path.region`)].filter(p => p.dataset.key)
      .map(p => [p.dataset.key, p.getAttribute("fill")]))])),
  paths: Object.fromEntries(["world", "us", "cn"].map(m => [m, document.querySelectorAll(`#${m} path.region`).length])),
  label: document.getElementById("period-label").textContent,
  coverage: document.getElementById("coverage").textContent,
  attribution: document.getElementById("attribution").textContent,
  databases: document.getElementById("databases").textContent,
  privacy: document.getElementById("privacy").textContent,
  subdivisions: [...document.querySelectorAll("#subdivision-rows tr")].map(r => r.dataset.code),
  subdivisionText: document.getElementById("subdivision-rows").textContent,
  exports: [...document.querySelectorAll("#exports button")].map(b => b.dataset.export),
  offmap: document.getElementById("offmap").textContent,
  titles: Object.fromEntries(["world", "us", "cn"].map(m => [m, [...document.querySelectorAll(`#${m} svg text.title`)]
    .map(t => ({text: t.textContent, right: t.getBBox().x + t.getBBox().width,
                width: t.ownerSVGElement.viewBox.baseVal.width}))])),
  warning: document.getElementById("db-warning").hidden ? "" : document.getElementById("db-warning").textContent,
})"""


@pytest.fixture(scope="module")
def locator() -> GeoLocator:
    return GeoLocator(GeoConfig())


def _bin_colour(share: float) -> str:
    edges = [0.01, 0.02, 0.05, 0.10, 0.25]
    return COLOURS[sum(share >= e for e in edges)]


async def _read(page: Page, expression: str = READ_MAP) -> dict[str, Any]:
    result = await page.send("Runtime.evaluate", timeout=10.0, expression=expression, returnByValue=True)
    if "exceptionDetails" in result:
        return {}
    value = result["result"].get("value")
    return json.loads(value) if isinstance(value, str) else {}


async def _wait(page: Page, predicate: Any, what: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        dom = await _read(page)
        if dom and predicate(dom):
            return dom
        if time.monotonic() > deadline:
            raise AssertionError(f"map page never showed {what}: {dom}")
        await asyncio.sleep(0.1)


async def _ingest(redis: aioredis.Redis, locator: GeoLocator, fleet: dict[str, float], day: dt.date,
                  seed: int) -> None:
    rng = random.Random(seed)
    miners = build_fleet(fleet, 12, locator, rng, total_rate=0.5)
    start = dt.datetime(day.year, day.month, day.day, 6, tzinfo=dt.UTC).timestamp()
    records = shares(miners, start, 4 * 3600, rng)
    rollup = GeoRollup(GeoConfig(), lambda: locator.databases)
    for i in range(0, len(records), 5000):
        await apply_ops(redis, rollup.ops(records[i:i + 5000], f"{seed}-{i}"))


async def _screenshot(page: Page, path: Path) -> None:
    shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 30_000
    path.write_bytes(png)
    print(f"map screenshot: {path}")


def test_every_asset_is_installed_from_npm() -> None:
    vendor = VendorAssets()
    for name in ASSETS:
        body, _ = vendor.get(name)
        assert len(body) > 5000, name
    world = json.loads(vendor.get("countries-50m.json")[0])
    codes = {g["properties"]["iso2"] for g in world["objects"]["countries"]["geometries"]}
    assert {"US", "CN", "KZ", "DE", "CA", "RU", "XK"} <= codes
    china = json.loads(vendor.get("china-provinces.json")[0])
    assert {f["properties"]["code"] for f in china["features"]} >= {"CN-SC", "CN-XJ", "CN-NM", "CN-HK"}
    assert len(china["features"]) == 34


async def test_map_colours_the_fleets_regions(locator: GeoLocator, redis_url: str, tmp_path: Path) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    await _ingest(redis, locator, FLEET1, DAY1, 1)
    await _ingest(redis, locator, FLEET2, DAY2, 2)
    data = InMemoryPool()
    exports = GeoExports(SimpleNamespace(geo=GeoConfig(), redis=SimpleNamespace(key_prefix="gs")),  # type: ignore[arg-type]
                         SimpleNamespace(client=redis), object())  # type: ignore[arg-type]
    server = AdminServer(make_config(), data, data, exports, data, environ={})  # type: ignore[arg-type]
    await server.start()
    shots = screenshot_dir(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/api/v1/map?period=daily&date={DAY1}", headers=READ) as response:
                assert response.status == 200
                view = await response.json()
            async with session.get(f"{server.url}/api/v1/map?period=fortnightly", headers=READ) as response:
                assert response.status == 400 and "period" in (await response.json())["reason"]
        assert view["periods"] == [DAY1.isoformat(), DAY2.isoformat()]
        countries = {r["country_iso"]: r for r in view["regions"] if r["level"] == "country"}
        assert countries["US"]["share_of_pool"] == pytest.approx(0.5, abs=0.02)
        assert countries["US"]["country_numeric"] == "840"
        subs = {r["subdivision_code"]: r for r in view["regions"] if r["level"] == "subdivision"}
        assert subs["US-TX"]["share_of_country"] == pytest.approx(0.6, abs=0.03)
        assert subs["CN-SC"]["share_of_country"] == pytest.approx(1.0)

        async with chromium() as page:
            await page.send("Page.navigate", url=f"{server.url}/map?period=daily&date={DAY1}#token={READ_TOKEN}")
            dom = await _wait(page, lambda d: d["state"] == "live" and d["period"] == f"daily:{DAY1}", "day 1")
            fills = dom["fills"]
            assert dom["paths"]["world"] > 200 and dom["paths"]["us"] >= 50 and dom["paths"]["cn"] == 34
            for iso in ("US", "CN", "DE"):
                assert fills["world"][iso] == _bin_colour(countries[iso]["share_of_pool"]), iso
            assert fills["world"]["KZ"] == NO_DATA and fills["world"]["RU"] == NO_DATA
            assert fills["us"]["US-TX"] == _bin_colour(subs["US-TX"]["share_of_country"])
            assert fills["us"]["US-GA"] == _bin_colour(subs["US-GA"]["share_of_country"])
            assert fills["us"]["US-CA"] == NO_DATA
            assert fills["cn"]["CN-SC"] == COLOURS[-1] and fills["cn"]["CN-XJ"] == NO_DATA
            # Germany's 12 miners spread over its states: every state cell folds into Germany's Other.
            assert set(dom["subdivisions"]) == {"US-TX", "US-GA", "CN-SC", ""}
            assert "Other (folded: suppressed cells)" in dom["subdivisionText"]
            assert "DB-IP" in dom["attribution"] and "CC BY 4.0" in dom["attribution"]
            assert "DBIP-City-Lite" in dom["databases"] and "built 2026-06-05" in dom["databases"]
            assert "at least 10 distinct miners" in dom["privacy"]
            # The database's age at the period's end decides the stale warning (45 days by default).
            age = (DAY1 - dt.date.fromisoformat(view["databases"][0]["build_date"])).days
            assert (f"DBIP-City-Lite was {age} days old" in dom["warning"]) == (age > 45), dom["warning"]
            assert "geolocated 100.00%" in dom["coverage"]
            assert "Unknown to the database" in dom["offmap"]
            assert "Hosting or anonymous networksunknown (no ASN database)" in dom["offmap"]   # not 0.00 %
            assert {"ccaf-countries.csv", "ccaf-us.csv", "ccaf-china.csv", "regions.json"} <= set(dom["exports"])
            await _screenshot(page, shots / "map-day1.png")
            # An export button fetches the shown period (the same range the API states) with the token.
            fetched = await page.send("Runtime.evaluate", awaitPromise=True, returnByValue=True, expression=f"""
              fetchOk("/api/v1/exports/ccaf-us?period=daily&start={DAY1}&end={DAY1}&format=csv", "*/*")
                .then(r => r.text())""")
            rows = [line.split(",") for line in fetched["result"]["value"].splitlines()[1:]]
            assert [(r[0], r[1]) for r in rows] == [(str(DAY1), "Texas"), (str(DAY1), "Georgia")]
            assert float(rows[0][2]) == pytest.approx(100 * subs["US-TX"]["share_of_country"], abs=0.005)
            assert float(rows[0][2]) + float(rows[1][2]) == pytest.approx(100.0, abs=0.011)

            # The stepper goes to the next stored period: another fleet, other colours.
            await page.send("Runtime.evaluate", expression='document.getElementById("next").click()')
            dom = await _wait(page, lambda d: d["period"] == f"daily:{DAY2}" and d["loads"] >= 2, "day 2")
            fills = dom["fills"]
            assert fills["world"]["KZ"] == COLOURS[-1] and fills["world"]["US"] == NO_DATA
            assert fills["world"]["CA"] == _bin_colour(0.15) and fills["world"]["CN"] == COLOURS[-1]
            assert fills["cn"]["CN-XJ"] == COLOURS[-1] and fills["cn"]["CN-SC"] == NO_DATA
            assert all(colour == NO_DATA for colour in fills["us"].values())
            await _screenshot(page, shots / "map-day2.png")

            # A monthly period to date has the longest titles: each fits its map (two lines if need be).
            await page.send("Page.navigate", url=f"{server.url}/map?period=monthly&date={TODAY}#token={READ_TOKEN}")
            dom = await _wait(page, lambda d: d["state"] == "live" and d["period"].startswith("monthly:"), "a month")
            for which, lines in dom["titles"].items():
                text = " ".join(line["text"] for line in lines)
                assert lines and text.startswith("Geostratum: ") and text.endswith("(to date)"), (which, text)
                assert all(line["right"] <= line["width"] - 4 for line in lines), (which, lines)
            if TODAY.day > 1:                      # a span of dates: too long for one line at 640 px
                assert len(dom["titles"]["cn"]) == 2 and len(dom["titles"]["world"]) == 1
            await _screenshot(page, shots / "map-month.png")

            # The figures: a standalone SVG and a PNG rasterised from it in the page.
            figure = await page.send("Runtime.evaluate", awaitPromise=True, returnByValue=True, expression="""
              (async () => {
                const svg = svgText("world");
                const png = await svgToPng("world");
                const bytes = new Uint8Array(await png.arrayBuffer());
                let text = ""; for (const b of bytes) text += String.fromCharCode(b);
                return JSON.stringify({svg, png: btoa(text)});
              })()""")
            result = json.loads(figure["result"]["value"])
            assert result["svg"].startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in result["svg"]
            assert "Kazakhstan" in result["svg"] or 'data-key="KZ"' in result["svg"]
            png = base64.b64decode(result["png"])
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            assert int.from_bytes(png[16:20], "big") == 1920          # 960 px wide at 2x
            (shots / "map-world.svg").write_text(result["svg"])
            (shots / "map-world.png").write_bytes(png)
    finally:
        await server.stop()
        await redis.aclose()
