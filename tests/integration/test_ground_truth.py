"""Every hashrate figure against a fleet whose hashrate is known: two workers that submit valid shares
(real proof of work, found by hashing) at a fixed difficulty on a fixed schedule, so the true work per
second is rate x difficulty x 2^32 by construction. The API, /metrics, the dashboard (headless
Chromium) and the day's export must each state an interval that holds the truth, agree with each
other, and keep doing so when a worker process restarts and when the pool restarts."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

from pool.geo.country_ips import draw_ips
from tests.admin.test_dashboard import CHROMIUM, chromium
from tests.integration.conftest import Fleet
from tests.integration.support import (
    READ,
    READ_TOKEN,
    admin_api,
    base_config,
    flushed,
    running_pool,
    stratum_port,
    wait_for,
    write_config,
)
from tests.integration.truth import RARE_BLOCKS_NBITS, Metronome, holds, shown_hashrate
from tests.integration.truth import metrics as truth_metrics

pytestmark = pytest.mark.timeout(150)

DIFFICULTY = 2e-7                 # every share, fixed (vardiff off): ~860 hashes find one
RATES = {"alice.fast": 12.0, "bob.slow": 6.0}   # shares per second
H = 2**32
TRUTH = {name: rate * DIFFICULTY * H for name, rate in RATES.items()}
POOL_TRUTH = sum(TRUTH.values())


async def read_all(api: Any) -> dict[str, Any]:
    """The same moment (give or take a request) through the API, /metrics and the export."""
    overview = await api.get("/api/v1/overview", READ)
    workers = {w["name"]: w for w in (await api.get("/api/v1/workers?limit=10", READ))["items"]}
    metrics = {name: value for (name, labels), value in truth_metrics((await api.get("/metrics")).decode()).items()
               if not labels}
    today = dt.datetime.now(dt.UTC).date()
    export = await api.get(f"/api/v1/exports/regions?period=daily&format=json&start={today}"
                           f"&end={today + dt.timedelta(days=1)}")
    return {"pool": overview["pool"]["hashrate"], "workers": workers, "metrics": metrics,
            "export": export["periods"][0]}


def check(seen: dict[str, Any], when: str) -> None:
    pool = seen["pool"]
    for window in ("1m", "5m", "15m", "1h"):
        assert holds(pool[window], POOL_TRUTH), (when, window, pool[window], POOL_TRUTH)
    for name, truth in TRUTH.items():
        for window in ("1m", "5m"):
            figure = seen["workers"][name]["hashrate"][window]
            assert holds(figure, truth), (when, name, window, figure, truth)
    m = seen["metrics"]
    assert m["geostratum_pool_hashrate_low_hps"] <= POOL_TRUTH <= m["geostratum_pool_hashrate_high_hps"], (when, m)
    # API and /metrics agree: each value lies inside the other's interval.
    assert pool["5m"]["low"] <= m["geostratum_pool_hashrate_hps"] <= pool["5m"]["high"], when
    assert m["geostratum_pool_hashrate_low_hps"] <= pool["5m"]["hashrate"] <= m["geostratum_pool_hashrate_high_hps"]
    period = seen["export"]
    assert period["pool_hashrate_low"] <= POOL_TRUTH <= period["pool_hashrate_high"], (when, period)
    assert 0 < period["period_coverage"] < 1                     # the pool ran for seconds of today


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium")
async def test_every_figure_holds_the_truth_through_restarts(redis_url: str, tmp_path: Path, fleet: Fleet) -> None:
    data = base_config(redis_url, tmp_path)
    data["chain"]["devnet"]["nbits"] = RARE_BLOCKS_NBITS
    port_config = data["stratum"]["ports"][0]
    port_config.update(start_difficulty=DIFFICULTY, min_difficulty=DIFFICULTY, max_difficulty=DIFFICULTY)
    config_path = write_config(tmp_path / "pool.toml", data)
    rng = random.Random(31)
    ips = dict(zip(RATES, draw_ips("DE", 1, rng) + draw_ips("US", 1, rng), strict=True))

    def start(app: Any, name: str) -> Metronome:
        return fleet.add(Metronome("127.0.0.1", stratum_port(app), name, public_ip=ips[name], rate=RATES[name],
                                   reconnect=False))

    async with running_pool(config_path) as app:
        miners = {name: start(app, name) for name in RATES}
        # ~20 s of mining: 360 shares, a 95 % interval of about +-10 %.
        await wait_for(lambda: miners["bob.slow"].stats.accepted >= 120, 60, "20 s of shares")
        assert all(m.stats.rejected == 0 for m in miners.values())
        await flushed(app)
        async with admin_api(app) as api:
            seen = await read_all(api)
            check(seen, "after 20 s")
            async with chromium() as page:
                await page.send("Page.navigate", url=f"{app.admin.url}/#token={READ_TOKEN}")
                dom = await page.wait_for(lambda d: d["state"] == "live" and d["polls"] >= 1)
            shown = shown_hashrate(dom["text"]["hr-5m"])
            api_5m = seen["pool"]["5m"]
            assert api_5m["low"] <= shown <= api_5m["high"] and "95 % interval" in dom["hover"]["hr-5m"]
            assert abs(shown - POOL_TRUTH) <= api_5m["high"] - api_5m["low"]

            # A worker process restarts: a new connection, the same worker name.
            before = seen["workers"]["bob.slow"]["hashrate"]["1m"]["hashrate"]
            await miners["bob.slow"].finish()
            miners["bob.slow"] = start(app, "bob.slow")
            accepted = miners["bob.slow"].stats.accepted
            await wait_for(lambda: miners["bob.slow"].stats.accepted >= accepted + 24, 30, "bob back")
            await flushed(app)
            seen = await read_all(api)
            check(seen, "after a worker restart")
            after = seen["workers"]["bob.slow"]["hashrate"]["1m"]
            assert after["low"] <= before <= after["high"]
        await miners["alice.fast"].finish()
        await miners["bob.slow"].finish()

    # The pool restarts (a new process on the same Redis): no figure halves or doubles.
    async with running_pool(config_path) as app:
        miners = {name: start(app, name) for name in RATES}
        await wait_for(lambda: miners["bob.slow"].stats.accepted >= 30, 30, "5 s after the restart")
        await flushed(app)
        async with admin_api(app) as api:
            check(await read_all(api), "after a pool restart")
        for miner in miners.values():
            await miner.finish()
