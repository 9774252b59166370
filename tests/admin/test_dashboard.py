"""The dashboard in headless Chromium (Debian's `chromium` package), driven over the DevTools
protocol: it loads, shows the pool's numbers, follows a change in the pool live, and a
screenshot is saved (its path is printed; set GEOSTRATUM_SCREENSHOT_DIR to keep it elsewhere)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import itertools
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from pool.admin.interfaces import BlockInfo
from pool.stratum.events import ShareRecord
from tests.admin.conftest import READ_TOKEN, make_config, start_admin
from tests.admin.providers import InMemoryPool

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must install Debian's chromium package (apt-get install -y chromium)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         "--window-size=1400,1900", "--hide-scrollbars"]
READ_DOM = """JSON.stringify({
  state: document.body.dataset.state, polls: Number(document.body.dataset.polls),
  href: location.href,
  text: Object.fromEntries(["hr-5m", "hr-1h", "workers", "connections", "net-height", "adj-change", "adj-detail",
    "hashprice-btc", "hashprice-usd", "net-hashrate", "blocks-found", "geo-attribution", "geo-database",
    "geo-stale", "status"]
    .map(id => [id, document.getElementById(id).textContent])),
  countries: [...document.querySelectorAll("#countries .bar-row")].map(r => r.dataset.country),
  blocks: [...document.querySelectorAll("#blocks tr td:first-child")].map(td => td.textContent),
  blockStatus: [...document.querySelectorAll("#blocks tr td:nth-child(5)")].map(td => td.textContent),
  workers: [...document.querySelectorAll("#worker-rows tr td:first-child")].map(td => td.textContent),
  workersNoteHidden: document.getElementById("workers-note").hidden,
  signinHidden: document.getElementById("signin").hidden,
  geoStaleHidden: document.getElementById("geo-stale").hidden,
  chartPoints: (document.querySelector("#chart polyline")?.getAttribute("points") || "").split(" ").length,
  chartBand: Boolean(document.querySelector("#chart polygon.band")),
  ticks: [...document.querySelectorAll("#chart text.tick")].map(t => t.textContent),
  hover: Object.fromEntries(["hr-5m", "hr-1h", "hr-24h"].map(id => [id, document.getElementById(id).title])),
  basis: document.getElementById("hr-5m-basis").textContent,
  workerHover: document.querySelector("#worker-rows tr td:nth-child(2)")?.title || "",
  countryHover: document.querySelector("#countries .bar-value")?.title || "",
})"""


class Page:
    """The minimum of the DevTools protocol: send a command, wait for its answer."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def send(self, method: str, timeout: float = 15.0, **params: Any) -> dict[str, Any]:
        """One DevTools command and its reply; TimeoutError if Chromium does not answer in time."""
        message_id = next(self.ids)
        await self.ws.send_json({"id": message_id, "method": method, "params": params})
        return await asyncio.wait_for(self._reply(method, message_id), timeout)

    async def _reply(self, method: str, message_id: int) -> dict[str, Any]:
        async for message in self.ws:
            data = json.loads(message.data)
            if data.get("id") == message_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data["result"]
        raise RuntimeError("DevTools connection closed")

    async def dom(self) -> dict[str, Any]:
        try:
            result = await self.send("Runtime.evaluate", timeout=5.0, expression=READ_DOM, returnByValue=True)
        except TimeoutError:                    # an evaluation lost in a navigation: ask again
            return {"state": None, "polls": 0}
        if "exceptionDetails" in result:        # the page is still loading
            return {"state": None, "polls": 0}
        return json.loads(result["result"]["value"])

    async def wait_for(self, predicate: Any, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            dom = await self.dom()
            if predicate(dom):
                return dom
            if time.monotonic() > deadline:
                raise AssertionError(f"dashboard never reached the expected state: {dom}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    profile = tempfile.mkdtemp(prefix="geostratum-chromium-")
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError("chromium did not open its DevTools port")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with session.ws_connect(url, max_msg_size=64 * 1024 * 1024) as ws:
                page = Page(ws)
                await page.send("Page.enable")
                yield page
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot_dir(tmp_path: Path) -> Path:
    configured = os.environ.get("GEOSTRATUM_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


async def test_dashboard_shows_live_numbers(pool_data: InMemoryPool, tmp_path: Path) -> None:
    # A candidate the node refused is listed with the node's reason.
    pool_data.blocks_found.append(BlockInfo(
        height=869_000, hash="00" * 31 + "ee", found_at=pool_data.clock() - 7_000_000, worker="bob.s19",
        account="bob", status="rejected", reward_sat=320_000_000, reason="bad-txnmrklroot"))
    server = await start_admin(pool_data, make_config(dashboard_refresh_seconds=0.5))
    try:
        async with chromium() as page:
            await page.send("Page.navigate", url=f"{server.url}/#token={READ_TOKEN}")
            dom = await page.wait_for(lambda d: d["state"] == "live" and d["polls"] >= 1)
            text = dom["text"]
            assert text["workers"] == "5" and text["connections"] == "6"
            assert text["hr-1h"] == "281 TH/s"                       # 2^48 H/s
            assert text["net-height"] == "880,000"
            assert text["adj-change"] == "+11.17%"
            assert re.fullmatch(r"992 blocks left · in about [\d.]+ (min|h|days)", text["adj-detail"])
            assert text["hashprice-btc"] == "0.00063468 BTC"
            assert text["hashprice-usd"] == "63.5 sats per TH/s per day; no USD price"   # 6.3468e-4 x 1e5
            assert text["blocks-found"] == "4"
            assert "DB-IP" in text["geo-attribution"] and "CC BY 4.0" in text["geo-attribution"]
            # The database and its age (the provider's: built 2023-04-01, read at its clock), stale past 45 days.
            age = int((pool_data.clock() - dt.datetime(2023, 4, 1, tzinfo=dt.UTC).timestamp()) // 86400)
            assert text["geo-database"] == f"Geolocation: DB-IP City Lite built 2023-04-01, {age:,} days ago"
            assert text["geo-stale"].startswith(f"Stale geolocation: DB-IP City Lite is {age:,} days old (more than "
                                                "geo.max_database_age_days = 45)")
            assert dom["geoStaleHidden"] is False
            assert dom["countries"][0] == "US" and dom["countries"][-1] == "KZ"   # CA and DE tie
            assert set(dom["countries"]) == {"US", "CA", "DE", "KZ"}
            assert dom["blocks"][:2] == ["879,990", "879,500"]
            assert dom["blockStatus"] == ["confirmed", "confirmed", "orphaned", "confirmed",
                                          "rejected: bad-txnmrklroot"]
            assert dom["workers"][0] in ("alice.rig1", "bob.s19", "carol.m30")
            assert dom["chartPoints"] > 40
            # Every figure states its window and its uncertainty on hover; the chart has a time axis
            # (24 h crosses a day: a date on the first tick) and its 95 % band.
            for element in ("hr-5m", "hr-1h", "hr-24h"):
                assert "95 % interval" in dom["hover"][element] and "window" in dom["hover"][element], element
            assert "shares over" in dom["workerHover"] and "95 % interval" in dom["countryHover"]
            assert "observed" in dom["basis"]
            assert len(dom["ticks"]) >= 4 and any(c.isalpha() for c in dom["ticks"][0]), dom["ticks"]
            assert dom["chartBand"]
            assert READ_TOKEN not in dom["href"]                     # the fragment was cleared

            # The pool changes: a sixth worker connects in Kazakhstan with a burst of shares.
            polls = dom["polls"]
            pool_data.connect("erin.new", country="KZ", difficulty=2.0**22)
            now = time.time()
            for k in range(30):
                pool_data.add_share(ShareRecord(timestamp=now - k, account="erin", worker="erin.new",
                                                difficulty=2.0**22, share_difficulty=2.0**22, height=880_001,
                                                country="KZ"))
            dom = await page.wait_for(lambda d: d["polls"] >= polls + 2 and d.get("text", {}).get("workers") == "6")
            assert dom["countries"][0] == "KZ"
            assert dom["workers"][0] == "erin.new"

            # On the devnet neither difficulty-based figure nor a price means anything.
            polls = dom["polls"]
            pool_data.network_info = msgspec.structs.replace(pool_data.network_info, chain="devnet")
            dom = await page.wait_for(lambda d: d["polls"] >= polls + 1
                                      and d.get("text", {}).get("hashprice-btc") == "n/a on test networks")
            assert dom["text"]["net-hashrate"] == "not meaningful on devnet"
            shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            png = base64.b64decode(shot["data"])
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
            path = screenshot_dir(tmp_path) / "dashboard.png"
            path.write_bytes(png)
            print(f"dashboard screenshot: {path}")
    finally:
        await server.stop()


async def test_dashboard_without_token_asks_for_one_or_reads_anonymously(pool_data: InMemoryPool) -> None:
    closed = await start_admin(pool_data, make_config())
    open_ = await start_admin(pool_data, make_config(anonymous=["dashboard"], dashboard_refresh_seconds=0.5))
    try:
        async with chromium() as page:
            await page.send("Page.navigate", url=f"{closed.url}/")
            dom = await page.wait_for(lambda d: d["state"] == "unauthorized")
            assert dom["signinHidden"] is False and dom["polls"] == 0
            await page.send("Page.navigate", url=f"{open_.url}/")
            dom = await page.wait_for(lambda d: d["state"] == "live")
            assert dom["text"]["workers"] == "5"
            assert dom["workersNoteHidden"] is False and dom["workers"] == []   # no worker names anonymously
            assert dom["countries"] == ["XX"]          # every country has < 10 miners: folded
    finally:
        await closed.stop()
        await open_.stop()


CHART = """JSON.stringify({
  state: document.body.dataset.state, polls: Number(document.body.dataset.polls),
  series: (document.getElementById("chart").series || []).map(p => p === null ? null : p.t),
  lines: [...document.querySelectorAll("#chart polyline.line")].map(l => l.getAttribute("points").split(" ")
    .map(xy => Number(xy.split(",")[0]))),
  dots: [...document.querySelectorAll("#chart circle.dot")].map(c => Number(c.getAttribute("cx"))),
  ticks: [...document.querySelectorAll("#chart text.tick")].map(t => t.textContent),
})"""


async def test_hashrate_chart_breaks_where_the_pool_was_not_observed(pool_data: InMemoryPool, tmp_path: Path) -> None:
    """The pool was down from 10 h to 8 h ago: the 24 h chart is given nulls for those steps and
    draws no line across them (two lines, one each side), under a time axis with dates."""
    now = pool_data.clock()
    pool_data.down = [(now - 36_000, now - 28_800)]
    history = await pool_data.hashrate_history(86_400)
    unobserved = [p.t for p in history.points if p.seconds <= 0]
    assert len(unobserved) >= 3                                 # whole 30-minute steps inside the outage
    server = await start_admin(pool_data, make_config(dashboard_refresh_seconds=0.5))
    try:
        async with chromium() as page:
            await page.send("Page.navigate", url=f"{server.url}/#token={READ_TOKEN}")
            await page.wait_for(lambda d: d["state"] == "live" and d["polls"] >= 1)
            result = await page.send("Runtime.evaluate", expression=CHART, returnByValue=True)
            chart = json.loads(result["result"]["value"])
            # The series the chart is given: null exactly where no second was observed.
            given = [p.t for p in history.points]
            assert len(chart["series"]) == len(given)
            assert [given[i] for i, t in enumerate(chart["series"]) if t is None] == unobserved
            # Drawn: one line before the outage and one after, none of their points inside it.
            assert len(chart["lines"]) == 2 and not chart["dots"], chart
            before, after = chart["lines"]
            assert max(before) < min(after)
            gap_points = [x for line in chart["lines"] for x in line if max(before) < x < min(after)]
            assert gap_points == []
            # The axis crosses a day: a date on its first tick, times on the others.
            assert re.search(r"[A-Za-z]{3} \d{1,2}", chart["ticks"][0]), chart["ticks"]
            assert all(re.search(r"\b([01]\d|2[0-3]):[0-5]\d$", t) for t in chart["ticks"]), chart["ticks"]
            shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            path = screenshot_dir(tmp_path) / "dashboard-gap.png"
            path.write_bytes(base64.b64decode(shot["data"]))
            print(f"dashboard screenshot with a gap: {path}")
    finally:
        await server.stop()
