"""A miner's own page against a live pool on the devnet: real hashing miners (one of them gone
offline), real Redis, the real chain. The JSON is checked against the shares the pool accepted
(best shares) and a hand computation (earnings); the page is read in headless Chromium, a screenshot
saved (GEOSTRATUM_SCREENSHOT_DIR keeps it), and an unknown account is a 404 page."""

from __future__ import annotations

import base64
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest

from pool.stratum.events import ShareRecord
from tests.admin.test_dashboard import CHROMIUM, Page, chromium, screenshot_dir
from tests.integration.conftest import Fleet
from tests.integration.support import (
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
DASH = "\u2013"             # the pages' range dash

READ_PAGE = """JSON.stringify({
  state: document.body.dataset.state, polls: Number(document.body.dataset.polls || 0),
  text: Object.fromEntries(["account", "hr-main", "hr-range", "workers-online", "workers-offline",
    "best-ever", "best-round", "earn-day", "earn-range", "balance", "status"]
    .map(id => [id, document.getElementById(id)?.textContent])),
  rows: [...document.querySelectorAll("#workers tr")].map(r => [r.dataset.worker, r.dataset.status]),
  urls: [...document.querySelectorAll("#urls code")].map(c => c.textContent),
  soloHidden: document.getElementById("solo-card")?.hidden,
  old: (r => r && {accepted: r.cells[4].textContent, rejected: r.cells[5].textContent, since: r.dataset.counted})(
    document.querySelector("#workers tr[data-worker='alice.old']")),
  back: {href: document.getElementById("back").href, text: document.getElementById("back").textContent,
         kind: document.getElementById("back").dataset.kind},
})"""


class Resubmitting(Miner):
    """A miner that sends every other share twice: the second copy is a reject (a duplicate, or stale
    when the job moved on meanwhile)."""

    async def _submit(self, work: Any, extranonce2: bytes, nonce: int, version_bits: int, is_block: bool) -> None:
        await super()._submit(work, extranonce2, nonce, version_bits, is_block)
        if self.stats.submitted % 2 and not is_block:
            await super()._submit(work, extranonce2, nonce, version_bits, False)


async def read_page(page: Page) -> dict[str, Any]:
    result = await page.send("Runtime.evaluate", timeout=5.0, expression=READ_PAGE, returnByValue=True)
    if "exceptionDetails" in result:
        return {"state": None}
    return json.loads(result["result"]["value"])


def walk_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in walk_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in walk_keys(v)}
    return set()


async def test_miner_page_public_with_an_offline_worker(redis_url: str, tmp_path: Path, fleet: Fleet,
                                                        books_dsn: str) -> None:
    data = base_config(redis_url, tmp_path, books_dsn=books_dsn)
    data["admin"]["anonymous"] = ["miner"]
    config_path = write_config(tmp_path / "pool.toml", data)
    async with running_pool(config_path) as app, admin_api(app) as api:
        assert app.admin is not None and app.ledger is not None
        accepted: list[ShareRecord] = []
        add = app.ledger.add

        def recording(record: ShareRecord) -> None:
            accepted.append(record)
            add(record)

        app.ledger.add = recording  # type: ignore[method-assign]
        port = stratum_port(app)
        rigs = {name: fleet.add(Miner("127.0.0.1", port, name)) for name in ("alice.rig1", "alice.rig2")}
        old = rigs["alice.old"] = fleet.add(Resubmitting("127.0.0.1", port, "alice.old"))
        fleet.add(Miner("127.0.0.1", port, "bob.rig"))
        await wait_for(lambda: all(m.stats.accepted >= 3 for m in fleet) and any(b.accepted for b in app.blocks),
                       30, "shares from every miner and a block")
        await rigs["alice.old"].finish()                       # goes offline, its books stay
        await wait_for(lambda: all(row["worker"] != "alice.old" for row in app.server.workers()), 10,
                       "the offline worker's connection to close")
        assert old.stats.rejected > 0

        # The offline worker's counts are the books': exactly what the pool answered it (its replies are
        # all in: it waited for them), once the next batch has taken them in.
        async def offline_counts() -> bool:
            row = (await api.get("/api/v1/workers?account=alice&search=old", READ))["items"][0]
            return (row["accepted"], row["rejected"]) == (old.stats.accepted, old.stats.rejected)

        await wait_for(offline_counts, 10, "the offline worker's counts in the books")

        def truth(worker: str | None = None) -> float:
            return max(r.share_difficulty for r in accepted if r.account == "alice"
                       and (worker is None or r.worker == worker))

        def pool_truth() -> float:
            return max(r.share_difficulty for r in accepted)

        await flushed(app)
        low = {"alice": truth(), "pool": pool_truth(), **{w: truth(w) for w in rigs}}
        status, body = await api.call("GET", "/api/v1/accounts/alice")     # no token: pages are public
        listed = {w["name"]: w for w in (await api.get("/api/v1/workers?account=alice", READ))["items"]}
        overview = await api.get("/api/v1/overview")
        _, metrics = await api.call("GET", "/metrics", READ)
        await flushed(app)
        high = {"alice": truth(), "pool": pool_truth(), **{w: truth(w) for w in rigs}}
        # The pool's record on the overview (dashboard) and /metrics: a share the pool accepted.
        pool_best = overview["best_share"]["ever"]["difficulty"]
        assert low["pool"] <= pool_best <= high["pool"]
        gauge = next(float(line.split()[-1]) for line in metrics.decode().splitlines()
                     if line.startswith("geostratum_best_share_difficulty "))
        assert low["pool"] <= gauge <= high["pool"]
        round_gauge = next(float(line.split()[-1]) for line in metrics.decode().splitlines()
                           if line.startswith("geostratum_round_best_share_difficulty "))
        assert 0 <= round_gauge <= gauge          # 0 right after a block closed the round
        assert status == 200, body
        miner = body["miner"]
        recorded = {r.share_difficulty for r in accepted}
        best = miner["best"]
        ever = best["account"]["ever"]
        # The record is one of the shares the pool accepted, at least the best flushed before the read
        # and at most the best accepted after it.
        assert low["alice"] <= ever["difficulty"] <= high["alice"] and ever["difficulty"] in recorded
        assert ever["worker"] in rigs
        for name in rigs:
            mine = best["workers"][name]
            assert low[name] <= mine["ever"]["difficulty"] <= high[name]
            assert mine["round"] is None or mine["round"]["difficulty"] <= mine["ever"]["difficulty"]
        assert best["workers"]["alice.old"]["connection"] is None            # no live connection
        # The operator's worker list carries the same books' bests for every worker.
        assert set(listed) == set(rigs)
        for name, row in listed.items():
            assert low[name] <= row["best"]["ever"]["difficulty"] <= high[name]
            assert row["best"]["ever"]["difficulty"] in recorded and row["best"]["ever"]["worker"] == name
            this_round = row["best"]["round"]
            assert this_round is None or this_round["difficulty"] <= row["best"]["ever"]["difficulty"]
        assert listed["alice.old"]["best"]["connection"] is None
        # Books are kept and nothing is paid yet: 0 in the summary, in the miner JSON and the accounts list.
        assert body["summary"]["paid_sat"] == 0 and body["summary"]["balance_sat"] == 0
        accounts = (await api.get("/api/v1/accounts?search=alice", READ))["items"]
        row = next(a for a in accounts if a["account"] == "alice")
        assert row["paid_sat"] == 0 and row["balance_sat"] == 0
        for name in ("alice.rig1", "alice.rig2"):
            assert best["workers"][name]["connection"] <= high[name] + 0.0
        workers = {w["name"]: w for w in body["workers"]}
        assert set(workers) == set(rigs)
        assert workers["alice.old"]["connections"] == 0 and workers["alice.rig1"]["connections"] == 1
        assert miner["workers"]["alice.old"]["connected_since"] is None
        gone = workers["alice.old"]
        assert (gone["accepted"], gone["rejected"]) == (old.stats.accepted, old.stats.rejected)
        # ... and its firmware and region, as its last share was tagged.
        rig1 = workers["alice.rig1"]
        assert (gone["firmware"], gone["country"]) == (rig1["firmware"], rig1["country"]) != ("unknown", "ZZ")
        assert gone["counted_since"] is not None and gone["counted_since"] <= time.time()
        by_reason = miner["workers"]["alice.old"]["rejected_by_reason"]
        assert sum(by_reason.values()) == old.stats.rejected and set(by_reason) <= {"duplicate", "stale", "unknown-job"}
        assert body["summary"]["rejected"] >= old.stats.rejected and body["summary"]["rejected_since"] is not None
        assert miner["workers"]["alice.rig1"]["connected_since"] > 0
        assert miner["stratum_urls"] == [f"stratum+tcp://127.0.0.1:{port}"]
        assert not {"address", "peer", "ip"} & walk_keys(body), "a miner page never shows IP addresses"

        # Earnings by hand: hashrate / (D x 2^32) x 86400 x reward x (1 - fee).
        earnings = miner["earnings"]
        net = (await api.get("/api/v1/overview"))["network"]
        assert earnings["scheme"] == "pplns" and earnings["window_seconds"] == 3600
        # ... at the account's own 1 h figure, whose interval and warming-up state it carries.
        hour = body["summary"]["hashrate"]["1h"]
        assert (earnings["hashrate"], earnings["hashrate_low"], earnings["hashrate_high"], earnings["shares"],
                earnings["warming_up"]) == (hour["hashrate"], hour["low"], hour["high"], hour["shares"],
                                            hour["warming_up"])
        expected = (earnings["hashrate"] / (earnings["network_difficulty"] * 2**32) * 86400
                    * earnings["reward_sat"] * (1 - app.config.payouts.fee_percent / 100))
        assert earnings["sat_per_day"]["value"] == pytest.approx(expected, rel=1e-12)
        assert earnings["network_difficulty"] == pytest.approx(net["difficulty"], rel=1e-6)
        assert miner["solo"] is None

        status, body = await api.call("GET", "/api/v1/accounts/nobody")
        assert status == 404 and body["error"] == "not_found"
        status, page_body = await api.call("GET", "/miner/nobody")
        assert status == 404 and b"No such account" in page_body and b'id="back" href="/"' in page_body

        async with chromium() as page:
            await page.send("Page.navigate", url=f"{app.admin.url}/miner/alice")
            deadline_dom: dict[str, Any] = {}

            async def ready() -> bool:
                deadline_dom.update(await read_page(page))
                return deadline_dom.get("state") == "ready"

            await wait_for(ready, 20, "the miner page to render")
            dom = deadline_dom
            assert dom["text"]["account"] == "alice"
            assert sorted(dom["rows"]) == [["alice.old", "offline"], ["alice.rig1", "online"], ["alice.rig2", "online"]]
            assert dom["old"]["accepted"] == f"{old.stats.accepted:,}"
            assert dom["old"]["rejected"].startswith(f"{old.stats.rejected:,} (")       # with its reasons
            assert dom["old"]["since"].startswith("since ") and dom["old"]["since"].endswith(" UTC")
            assert dom["text"]["workers-online"] == "2 online" and dom["text"]["workers-offline"] == "1"
            # The page shows a share the pool accepted from alice, to three significant digits.
            shown = float(dom["text"]["best-ever"])
            assert shown >= float(f"{ever['difficulty']:.3g}")
            assert any(float(f"{r.share_difficulty:.3g}") == shown for r in accepted if r.account == "alice")
            # Earnings: one format for the value and both ends of the range (the same decimals).
            earn, earn_range = dom["text"]["earn-day"], dom["text"]["earn-range"]
            assert re.fullmatch(r"warming up \(\d[\d,]* shares?\)|[\d,]+(\.\d+)? test BTC/day", earn), earn
            ends = re.fullmatch(rf"95 %: ([\d,]+(\.\d+)?) {DASH} ([\d,]+(\.\d+)?) test BTC/day · PPLNS, 1(\.0)? % fee",
                                earn_range)
            assert ends and len(ends.group(2) or "") == len(ends.group(4) or ""), earn_range
            assert dom["back"] == {"href": f"{app.admin.url}/", "text": "← pool home", "kind": "home"}
            # The page's formatters against hand-made truths.
            truths = {
                "perDay({value: 123456789012, low: 91357250000, high: 231000000000})":
                    {"value": "1,234.57 test BTC/day", "range": f"913.57 {DASH} 2,310.00 test BTC/day"},
                "perDay({value: 66218, low: 50000, high: null})":
                    {"value": "0.00066218 test BTC/day", "range": f"0.00050000 {DASH} ? test BTC/day"},
                "[plural(1, 'share'), plural(2, 'share'), plural(1204, 'share'), rateText({hashrate: 5, low: 1,"
                " high: 9, shares: 1, warming_up: true})]":
                    ["1 share", "2 shares", "1,204 shares", "warming up (1 share)"],
                "msatAmount(60000000123, 'BTC')": "0.60000000 BTC",
            }
            for expression, expected in truths.items():
                result = await page.send("Runtime.evaluate", timeout=5.0, expression=f"JSON.stringify({expression})",
                                         returnByValue=True)
                assert json.loads(result["result"]["value"]) == expected, expression
            shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            png = base64.b64decode(shot["data"])
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            path = screenshot_dir(tmp_path) / "miner-page.png"
            path.write_bytes(png)
            print(f"miner page screenshot: {path}")

            # A long payout history shows its newest 10 lines until the miner asks for the rest.
            lines = [{"kind": "block_credit", "amount_msat": 1000 * (i + 1), "at": 1.8e9 - i, "ref": f"{i:064x}"}
                     for i in range(12)]
            _, fresh = await api.call("GET", "/api/v1/accounts/alice")
            fresh["miner"]["payouts"] = lines
            shown = """(() => { render(%s); const a = document.querySelectorAll("#payouts tr").length;
                document.getElementById("more-payouts").click();
                return [a, document.querySelectorAll("#payouts tr").length,
                        document.querySelector("#payouts tr td:nth-child(3)").textContent]; })()"""
            result = await page.send("Runtime.evaluate", timeout=5.0, expression=shown % json.dumps(fresh),
                                     returnByValue=True)
            assert result["result"]["value"] == [11, 12, "0.00000001 test BTC"]
            # Steps the pool did not run in break the chart's line (no figure drawn across the gap).
            steps = [{"t": 600.0 * i, "seconds": 0 if i in (3, 4, 6) else 600, "hashrate": 1e3, "shares": 50,
                      "low": 800.0, "high": 1200.0} for i in range(8)]
            drawn = """(() => { const box = document.createElement("div"); chart(box, %s, true);
                return [box.querySelectorAll("polyline").length, box.querySelectorAll("polygon").length,
                        box.querySelectorAll("circle").length]; })()"""
            result = await page.send("Runtime.evaluate", timeout=5.0,
                                     expression=drawn % json.dumps({"step_seconds": 600, "points": steps}),
                                     returnByValue=True)
            assert result["result"]["value"] == [1, 1, 2]      # steps 0-2 a line and its band; 5 and 7 dots
            # A young account: one observed step, the last of the period, is a dot with its interval at the
            # right end of an axis that spans the whole period.
            young = [{**p, "seconds": 600 if i == 7 else 0} for i, p in enumerate(steps)]
            lone = """(() => { const box = document.createElement("div"); chart(box, %s, true);
                const dot = box.querySelector("circle"), whisker = box.querySelector("line.whisker");
                return [box.querySelectorAll("circle").length, box.querySelectorAll("polyline").length,
                        Number(dot.getAttribute("cx")),
                        Number(whisker.getAttribute("y1")) > Number(whisker.getAttribute("y2")),
                        box.textContent.includes("no shares")]; })()"""
            result = await page.send("Runtime.evaluate", timeout=5.0,
                                     expression=lone % json.dumps({"step_seconds": 600, "points": young}),
                                     returnByValue=True)
            assert result["result"]["value"] == [1, 0, 800, True, False]
            assert dom["urls"] == [f"stratum+tcp://127.0.0.1:{port}"] and dom["soloHidden"] is True

            await page.send("Page.navigate", url=f"{app.admin.url}/miner/nobody")
            await wait_for(lambda: read_missing(page), 10, "the 404 page")
        assert math.isfinite(ever["difficulty"])


async def read_missing(page: Page) -> bool:
    result = await page.send("Runtime.evaluate", timeout=5.0, expression="document.body.dataset.state",
                             returnByValue=True)
    return result.get("result", {}).get("value") == "missing"


pytestmark = [pytestmark, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]


SOLO_ADDRESS = "bcrt1qm2n8duyglvgeh4dvztaf4jl8gm50njj4y7pums"     # a real regtest address (devnet formats)


async def test_solo_account_shows_its_odds_of_a_block(redis_url: str, tmp_path: Path, fleet: Fleet) -> None:
    """SOLO: the expected time to a block is 1 / rate and the chance per day 1 - exp(-rate x 86400), with
    rate = hashrate / (difficulty x 2^32), at the account's 1 h figure; no pool balance."""
    data = base_config(redis_url, tmp_path)
    data["chain"]["mode"] = "solo"
    data["chain"]["solo_fee_percent"] = 0.0
    data["admin"]["anonymous"] = ["miner"]
    config_path = write_config(tmp_path / "pool.toml", data)
    async with running_pool(config_path) as app, admin_api(app) as api:
        miner = fleet.add(Miner("127.0.0.1", stratum_port(app), f"{SOLO_ADDRESS}.bitaxe"))
        await wait_for(lambda: miner.stats.accepted >= 5, 30, "solo shares")
        await flushed(app)
        status, body = await api.call("GET", f"/api/v1/accounts/{SOLO_ADDRESS}")
        assert status == 200, body
        earnings, solo = body["miner"]["earnings"], body["miner"]["solo"]
        assert earnings["scheme"] == "solo" and earnings["fee_percent"] == 0.0
        assert body["summary"]["balance_sat"] is None                    # SOLO pays the finder directly
        rate = earnings["hashrate"] / (earnings["network_difficulty"] * 2**32)
        assert rate > 0
        assert solo["expected_seconds_to_block"]["value"] == pytest.approx(1 / rate, rel=1e-12)
        assert solo["chance_per_day"]["value"] == pytest.approx(-math.expm1(-rate * 86400), rel=1e-12)
        assert solo["window_seconds"] == earnings["window_seconds"] == 3600
        async with chromium() as page:
            await page.send("Page.navigate", url=f"{app.admin.url}/miner/{SOLO_ADDRESS}")
            seen: dict[str, Any] = {}

            async def ready() -> bool:
                seen.update(await read_page(page))
                return seen.get("state") == "ready"

            await wait_for(ready, 20, "the solo miner page")
            assert seen["soloHidden"] is False and seen["text"]["balance"] == "n/a (solo: blocks pay you directly)"
            shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            path = screenshot_dir(tmp_path) / "miner-page-solo.png"
            path.write_bytes(base64.b64decode(shot["data"]))
            print(f"solo miner page screenshot: {path}")
