"""The dashboard in headless Chromium against a live pool on the devnet: real miners, real chain,
real Redis. It shows the pool's live numbers and follows a change (a miner joining), and a
screenshot is saved (its path is printed; GEOSTRATUM_SCREENSHOT_DIR keeps it elsewhere)."""

from __future__ import annotations

import base64
import random
import re
from pathlib import Path
from typing import Any

import pytest

from pool.geo.country_ips import draw_ips
from tests.admin.test_dashboard import CHROMIUM, Page, chromium, screenshot_dir
from tests.integration.conftest import Fleet
from tests.integration.support import (
    READ,
    READ_TOKEN,
    Miner,
    admin_api,
    base_config,
    running_pool,
    stratum_port,
    wait_for,
    write_config,
)


async def evaluate(page: Page, expression: str) -> Any:
    """The value of `expression` in the page (None while a navigation replaces the document)."""
    try:
        result = await page.send("Runtime.evaluate", timeout=5.0, expression=expression, returnByValue=True)
    except TimeoutError:
        return None
    return None if "exceptionDetails" in result else result["result"].get("value")


pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"),
              pytest.mark.timeout(120)]


async def test_dashboard_shows_the_live_pool(redis_url: str, tmp_path: Path, fleet: Fleet) -> None:
    config_path = write_config(tmp_path / "pool.toml", base_config(redis_url, tmp_path))
    rng = random.Random(11)
    ips = {"DE": draw_ips("DE", 2, rng), "CA": draw_ips("CA", 1, rng), "KZ": draw_ips("KZ", 1, rng)}
    async with running_pool(config_path) as app, admin_api(app) as api:
        assert app.admin is not None and app.jobs is not None
        port = stratum_port(app)
        fleet.add(Miner("127.0.0.1", port, "dora.de1", public_ip=ips["DE"][0]))
        fleet.add(Miner("127.0.0.1", port, "dora.de2", public_ip=ips["DE"][1]))
        fleet.add(Miner("127.0.0.1", port, "ed.ca", public_ip=ips["CA"][0]))
        await wait_for(lambda: sum(b.accepted for b in app.blocks) >= 1
                       and all(m.stats.accepted >= 1 for m in fleet), 30, "a block and shares from every miner")
        async with chromium() as page:
            await page.send("Page.navigate", url=f"{app.admin.url}/#token={READ_TOKEN}")
            dom = await page.wait_for(lambda d: d["state"] == "live" and d["polls"] >= 1
                                      and d["text"]["workers"] == "3" and d["countries"])
            overview = await api.get("/api/v1/overview")
            text = dom["text"]
            assert text["connections"] == "3"
            assert int(text["blocks-found"].replace(",", "")) >= 1
            height = int(text["net-height"].replace(",", ""))
            assert overview["network"]["height"] - 2 <= height <= overview["network"]["height"]
            assert "DB-IP" in text["geo-attribution"] and "CC BY 4.0" in text["geo-attribution"]
            assert {"DE", "CA"} <= set(dom["countries"])
            assert set(dom["workers"]) == {"dora.de1", "dora.de2", "ed.ca"}
            assert dom["blocks"], "the found blocks are listed"
            assert READ_TOKEN not in dom["href"]

            # A miner in Kazakhstan joins: the page follows without a reload.
            polls = dom["polls"]
            fleet.add(Miner("127.0.0.1", port, "fay.kz", public_ip=ips["KZ"][0]))
            await wait_for(lambda: fleet[-1].stats.accepted >= 2, 20, "shares from the new miner")
            dom = await page.wait_for(lambda d: d["polls"] > polls and d["text"]["workers"] == "4"
                                      and "KZ" in d["countries"], timeout=20)
            assert "fay.kz" in dom["workers"] and dom["text"]["connections"] == "4"

            shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            png = base64.b64decode(shot["data"])
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
            path = screenshot_dir(tmp_path) / "dashboard-live.png"
            path.write_bytes(png)
            print(f"dashboard screenshot: {path}")

            # Worker names link to their account's miner page; the best share column is the API's.
            # (bests only grow: the page's, polled between two reads of the API, lies between them)
            async def bests() -> dict[str, float]:
                items = (await api.get("/api/v1/workers?limit=15&sort=hashrate", READ))["items"]
                return {w["name"]: float(f"{w['best']['ever']['difficulty']:.3g}") for w in items}

            before = await bests()
            polls = (await page.dom())["polls"]
            await page.wait_for(lambda d: d["polls"] > polls)
            rows = await evaluate(page, """[...document.querySelectorAll("#worker-rows tr")].map(r => ({
                name: r.cells[0].textContent, href: r.cells[0].querySelector("a")?.getAttribute("href"),
                best: r.cells[6].textContent}))""")
            after = await bests()
            assert {r["name"] for r in rows} == set(before) == set(after)
            for row in rows:
                assert row["href"] == "/miner/" + row["name"].split(".", 1)[0]
                assert before[row["name"]] <= float(row["best"]) <= after[row["name"]]

            # Rewards on the devnet are test coins, to the satoshi.
            rewards = await evaluate(page, "[...document.querySelectorAll('#blocks tr')]"
                                           ".map(r => r.cells[3].textContent)")
            assert rewards and all(re.fullmatch(r"[\d,]+\.\d{8} test BTC", r) for r in rewards), rewards

            # The account search: an unknown account is a clean message, a part of a name offers the
            # matches, an account (or ACCOUNT.WORKER) opens its page, whose back link is the dashboard.
            async def search(text: str) -> str:
                await evaluate(page, f"""(document.getElementById("account-query").value = {text!r},
                    document.body.dataset.search = "", document.getElementById("account-result").textContent = "",
                    document.getElementById("account-form").requestSubmit(), 1)""")
                await wait_for(lambda: evaluate(page, "document.body.dataset.search || ''"), 10, "a search result")
                return await evaluate(page, "document.getElementById('account-result').textContent")

            assert await search("nobody") == "No account named “nobody” (none with a share in the last 24 h)."
            assert await search("dor") == "No account named “dor” (none with a share in the last 24 h); similar: dora"
            await evaluate(page, """(document.getElementById("account-query").value = "dora.de2",
                document.getElementById("account-form").requestSubmit(), 1)""")
            await wait_for(lambda: evaluate(page, "location.pathname === '/miner/dora' && document.body.dataset.state"
                                                  " === 'ready'"), 20, "the miner page of dora")
            back = await evaluate(page, "[document.getElementById('back').getAttribute('href'),"
                                        " document.getElementById('back').textContent]")
            assert back == ["/", "← operator dashboard"]
