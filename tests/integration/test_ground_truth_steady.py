"""Every hashrate figure of `geostratum run --workers 2` against a fleet of known hashrate, for a bit
over five minutes: 30 s after the pool started and at steady state (the 1m and 5m windows wholly
inside the run), the API (pool, workers, regions), /metrics, the day's export and the dashboard (in
headless Chromium) each state a 95 % interval that holds the truth, and they agree with each other.
When one worker process is killed with SIGKILL (its supervisor starts it again; its journal replays)
and when the whole pool restarts, no figure moves by more than its interval. A miner that leaves
decays to 0 in its 1 m window while the pool runs, and its region's share falls with it.

The truth (tests/integration/truth.py): four miners submit real shares at difficulty D on a fixed
schedule of r shares a second, so each mines D x 2^32 x r H/s while connected; the test knows when
every share the pool accepted was submitted, so the true work per second over the span a figure says
it covers is exact, including the seconds a miner was reconnecting.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import os
import random
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from pool.geo.country_ips import draw_ips
from tests.admin.test_dashboard import CHROMIUM, Page, chromium
from tests.integration.support import ADMIN, READ_TOKEN, Api, base_config, free_port, wait_for, write_config
from tests.integration.test_workers import pool_processes, snapshots, worker_pids
from tests.integration.truth import (
    RARE_BLOCKS_NBITS,
    KnownFleet,
    Metronome,
    holds,
    metrics,
    shown_hashrate,
    shown_interval,
    within,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium")]

DIFFICULTY = 2e-7                  # every share (vardiff off): ~860 hashes find one
# name -> (shares per second, country). 24 shares/s: the pool's 5m window counts ~7,000 (+-2.3 %).
MINERS = {"alice.fast": (10.0, "DE"), "carol.leaves": (4.0, "DE"), "bob.slow": (6.0, "US"),
          "dave.steady": (4.0, "US")}
LEAVER = "carol.leaves"
POOL_WINDOWS = ("1m", "5m", "15m", "1h")
WORKER_WINDOWS = ("1m", "5m")
REGION_WINDOWS = ("5m", "1h")
DASHBOARD = """JSON.stringify({
  polls: Number(document.body.dataset.polls), state: document.body.dataset.state,
  pool: Object.fromEntries(["hr-5m", "hr-1h"].map(id => [id, [document.getElementById(id).textContent,
    document.getElementById(id).title]])),
  countries: Object.fromEntries([...document.querySelectorAll("#countries .bar-row")].map(r =>
    [r.dataset.country, [r.querySelector(".bar-value").textContent, r.querySelector(".bar-value").title]])),
  workers: Object.fromEntries([...document.querySelectorAll("#worker-rows tr")].map(r =>
    [r.cells[0].textContent, [r.cells[1].textContent, r.cells[1].title]])),
})"""


# -- the pool's processes -------------------------------------------------------------------------


async def placement(redis: aioredis.Redis, since: float) -> dict[str, int]:
    """Miner name -> index of the worker process holding its connection, from snapshots taken after
    `since`."""
    nodes = await snapshots(redis)
    return {row.worker: node.worker_index for node in nodes.values() if node.at > since for row in node.rows}


async def spread(api: Api, redis: aioredis.Redis, fleet: KnownFleet) -> dict[str, int]:
    """Kick miners (they reconnect, and the kernel picks a process for each new connection) until
    both worker processes hold miners: 20 kicks all landing on one side happen once in a million."""
    since = time.time()
    for _ in range(20):
        where = await wait_for(lambda t=since: all_placed(redis, fleet, t), 20, "every miner connected")
        if set(where.values()) == {0, 1}:
            return where
        crowded = fleet.miners[sorted(where)[0]]
        connections = crowded.stats.connections
        status, _ = await api.call("POST", f"/api/v1/workers/{crowded.username}/kick", ADMIN)
        assert status == 200
        await wait_for(lambda m=crowded, n=connections: m.stats.connections > n, 20,
                       f"{crowded.username} back")
        since = time.time()
    raise AssertionError(f"the kernel put every connection on one process: {where}")


async def all_placed(redis: aioredis.Redis, fleet: KnownFleet, since: float) -> dict[str, int] | None:
    where = await placement(redis, since)
    connected = {name for name, m in fleet.miners.items() if m.task is not None and not m.task.done()}
    return where if set(where) == connected else None


# -- one moment, read everywhere ------------------------------------------------------------------


class Reading:
    """The figures of one moment, each with the wall clock it was computed at."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.pool: dict[str, Any] = {}
        self.workers: dict[str, Any] = {}
        self.regions: dict[str, dict[str, Any]] = {}
        self.metrics: dict[Any, float] = {}
        self.export: dict[str, Any] = {}
        self.dashboard: dict[str, Any] = {}


async def timed(api: Api, path: str) -> tuple[Any, float]:
    before = time.time()
    body = await api.get(path)
    return body, (before + time.time()) / 2


async def read_all(api: Api, page: Page) -> Reading:
    seen = Reading()
    overview, seen.at["pool"] = await timed(api, "/api/v1/overview")
    seen.pool = overview["pool"]["hashrate"]
    page_of_workers, seen.at["workers"] = await timed(api, "/api/v1/workers?limit=20")
    seen.workers = {w["name"]: w["hashrate"] for w in page_of_workers["items"]}
    for window in REGION_WINDOWS:
        body, seen.at[f"regions {window}"] = await timed(api, f"/api/v1/regions?level=country&window={window}")
        seen.regions[window] = {r["country"]: r for r in body["items"]}
    text, seen.at["metrics"] = await timed(api, "/metrics")
    seen.metrics = metrics(text.decode())
    today = dt.datetime.now(dt.UTC).date()
    export, seen.at["export"] = await timed(api, f"/api/v1/exports/regions?period=daily&format=json&start={today}"
                                                 f"&end={today}")
    seen.export = export["periods"][0]
    polls = (await page.dom())["polls"]
    seen.dashboard = await dashboard(page, polls + 2)      # a poll that began after the API reads
    return seen


async def dashboard(page: Page, polls: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        result = await page.send("Runtime.evaluate", expression=DASHBOARD, returnByValue=True)
        if "exceptionDetails" not in result:
            import json

            dom = json.loads(result["result"]["value"])
            if dom["state"] == "live" and dom["polls"] >= polls:
                return dom
        assert time.monotonic() < deadline, "the dashboard stopped polling"
        await asyncio.sleep(0.1)


def gauge(m: dict[Any, float], name: str, **labels: str) -> float:
    return m[(name, tuple(sorted(labels.items())))]


def metric_figure(m: dict[Any, float], name: str, **labels: str) -> dict[str, Any]:
    return {"hashrate": gauge(m, name, **labels), "low": gauge(m, name.replace("_hps", "_low_hps"), **labels),
            "high": gauge(m, name.replace("_hps", "_high_hps"), **labels), "warming_up": False}


def span_truth(fleet: KnownFleet, at: float, covered: float, names: list[str] | None = None) -> float:
    return fleet.truth(at - covered, at, names)


# -- the checks -----------------------------------------------------------------------------------


def check_truth(seen: Reading, fleet: KnownFleet, when: str) -> None:
    """Each place's figure states an interval that holds the truth over the seconds it covers."""
    for window in POOL_WINDOWS:
        figure = seen.pool[window]
        truth = span_truth(fleet, seen.at["pool"], figure["covered_seconds"])
        print(f"{when}: pool {window} {figure['hashrate']:.0f} H/s [{figure['low']:.0f}, {figure['high']:.0f}] over "
              f"{figure['covered_seconds']:.0f} s, {figure['shares']} shares; truth {truth:.0f} H/s")  # with -s
        assert holds(figure, truth), (when, "pool", window, figure, truth)
    for name, windows in seen.workers.items():
        for window in WORKER_WINDOWS:
            figure = windows[window]
            truth = span_truth(fleet, seen.at["workers"], figure["covered_seconds"], [name])
            if truth == 0:          # gone for longer than the window
                assert figure["shares"] == 0 and figure["hashrate"] == 0, (when, name, window, figure)
                continue
            assert holds(figure, truth), (when, name, window, figure, truth)
    for window in REGION_WINDOWS:
        for country in ("DE", "US"):
            figure = seen.regions[window][country]
            truth = span_truth(fleet, seen.at[f"regions {window}"], figure["covered_seconds"],
                               fleet.in_region(country))
            assert holds(figure, truth), (when, country, window, figure, truth)
    m = seen.metrics
    covered = gauge(m, "geostratum_pool_hashrate_observed_seconds")
    truth = span_truth(fleet, seen.at["metrics"], covered)
    assert holds(metric_figure(m, "geostratum_pool_hashrate_hps"), truth), (when, "metrics", truth)
    for country in ("DE", "US"):
        figure = metric_figure(m, "geostratum_country_hashrate_hps", country=country)
        assert holds(figure, span_truth(fleet, seen.at["metrics"], covered, fleet.in_region(country))), (when, country)
    period = seen.export
    truth = span_truth(fleet, seen.at["export"], period["period_seconds"])
    assert period["pool_hashrate_low"] <= truth <= period["pool_hashrate_high"], (when, "export", period, truth)
    # The dashboard: the 5 min and 1 h cards, the countries (1 h) and the workers (5 min), read off the
    # page, each with the interval its hover states.
    board = seen.dashboard
    for card, window in (("hr-5m", "5m"), ("hr-1h", "1h")):
        low, high = shown_interval(board["pool"][card][1])
        truth = span_truth(fleet, seen.at["pool"], seen.pool[window]["covered_seconds"])
        assert low * 0.995 <= truth <= high * 1.005, (when, card, board["pool"][card], truth)
    for country in ("DE", "US"):
        low, high = shown_interval(board["countries"][country][1])
        figure = seen.regions["1h"][country]
        truth = span_truth(fleet, seen.at["regions 1h"], figure["covered_seconds"], fleet.in_region(country))
        assert low * 0.995 <= truth <= high * 1.005, (when, country, board["countries"][country], truth)


def check_agreement(seen: Reading, when: str) -> None:
    """Places that show the same figure agree: each value lies inside the others' intervals."""
    api_5m = seen.pool["5m"]
    metric = metric_figure(seen.metrics, "geostratum_pool_hashrate_hps")
    assert within(metric["hashrate"], api_5m) and within(api_5m["hashrate"], metric), (when, api_5m, metric)
    for country in ("DE", "US"):
        api = seen.regions["5m"][country]
        metric = metric_figure(seen.metrics, "geostratum_country_hashrate_hps", country=country)
        assert within(metric["hashrate"], api) and within(api["hashrate"], metric), (when, country, api, metric)
    for window in REGION_WINDOWS:           # the regions sum to the pool
        total = sum(r["hashrate"] for r in seen.regions[window].values())
        assert within(total, seen.pool[window]), (when, window, total, seen.pool[window])
    board = seen.dashboard
    for card, window in (("hr-5m", "5m"), ("hr-1h", "1h")):
        shown = shown_hashrate(board["pool"][card][0])
        assert within(shown, seen.pool[window]), (when, card, shown, seen.pool[window])
    for country in ("DE", "US"):
        shown = shown_hashrate(board["countries"][country][0].split(" · ")[0])
        assert within(shown, seen.regions["1h"][country]), (when, country, shown)
    for name, (text, _hover) in board["workers"].items():
        if name in seen.workers and not seen.workers[name]["5m"]["warming_up"]:
            assert within(shown_hashrate(text), seen.workers[name]["5m"]), (when, name, text)
    export = seen.export
    assert within(export["pool_hashrate"], seen.pool["1h"]), (when, export["pool_hashrate"], seen.pool["1h"])


def moved_within(before: dict[str, Any], after: dict[str, Any], outage: float, truth_moved: float = 0.0) -> bool:
    """The value before, moved as the truth moved (`truth_moved`: the truth over the seconds the figure
    after covers less the truth over the seconds the figure before covered; miners reconnecting after a
    kill lose work, and the figures should follow that, not jump past it), lies inside the interval
    after, widened by the part of the window the pool was off the air (`outage` seconds, which the
    miners lost too: the truth fell by as much)."""
    lost = before["hashrate"] * min(1.0, outage / max(after["covered_seconds"], 1.0))
    expected = before["hashrate"] + truth_moved
    return after["high"] is not None and after["low"] - lost <= expected <= after["high"] + lost


def check_steady(before: Reading, after: Reading, fleet: KnownFleet, what: str, outage: float = 0.0) -> None:
    """No figure moved by more than its interval beyond what the truth did (plus an outage's part of
    its window)."""
    def moved(place: str, old: dict[str, Any], new: dict[str, Any], names: list[str] | None = None) -> float:
        return (span_truth(fleet, after.at[place], new["covered_seconds"], names)
                - span_truth(fleet, before.at[place], old["covered_seconds"], names))

    for window in POOL_WINDOWS:
        old, new = before.pool[window], after.pool[window]
        assert moved_within(old, new, outage, moved("pool", old, new)), (what, window, old, new)
    for name, figures in after.workers.items():
        if name == LEAVER or name not in before.workers:
            continue
        for window in WORKER_WINDOWS:
            old, new = before.workers[name][window], figures[window]
            assert moved_within(old, new, outage, moved("workers", old, new, [name])), (what, name, window, old, new)
    for window in REGION_WINDOWS:
        for country in ("DE", "US"):
            old, new = before.regions[window][country], after.regions[window][country]
            shift = moved(f"regions {window}", old, new, fleet.in_region(country))
            assert moved_within(old, new, outage, shift), (what, country, window, old, new, shift)
    old, new = (metric_figure(r.metrics, "geostratum_pool_hashrate_hps") for r in (before, after))
    old["covered_seconds"] = gauge(before.metrics, "geostratum_pool_hashrate_observed_seconds")
    new["covered_seconds"] = gauge(after.metrics, "geostratum_pool_hashrate_observed_seconds")
    assert moved_within(old, new, outage, moved("metrics", old, new)), (what, "metrics", old, new)


# -- the run --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def pool_up(config_path: Path, log_path: Path, redis: aioredis.Redis,
                  api: Api) -> AsyncIterator[asyncio.subprocess.Process]:
    async with pool_processes(config_path, log_path) as proc:
        async def admin_up() -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                status, _ = await api.call("GET", "/api/v1/health", ADMIN)
                return status in (200, 503)
            return False

        try:
            await wait_for(admin_up, 60, "worker 0's admin API", interval=0.2)
            await wait_for(lambda: fresh_nodes(redis, 2), 30, "both workers' snapshots", interval=0.2)
        except AssertionError:
            raise AssertionError(log_path.read_text()[-3000:]) from None
        yield proc


async def fresh_nodes(redis: aioredis.Redis, n: int) -> bool:
    nodes = await snapshots(redis)
    return sum(node.at > time.time() - 3 for node in nodes.values()) >= n


async def restarted(redis: aioredis.Redis, index: int, since: float) -> bool:
    """Worker `index` runs again: a process started after `since` publishes its snapshots."""
    nodes = await snapshots(redis)
    return any(n.worker_index == index and n.started_at > since and n.at > time.time() - 3 for n in nodes.values())


async def age(api: Api) -> float:
    """Seconds since the pool's first observation (its 1 h window covers them all)."""
    return float((await api.get("/api/v1/overview"))["pool"]["hashrate"]["1h"]["covered_seconds"])


async def mining_again(fleet: KnownFleet, since: float, seconds: float) -> bool:
    """Every connected miner has had shares accepted for `seconds` after `since`."""
    return all(m.shares_between(since + seconds, time.time() + 1) > 0 for m in fleet.miners.values()
               if m.task is not None and not m.task.done())


async def test_steady_state_on_two_worker_processes(redis_url: str, tmp_path: Path) -> None:
    stratum, admin = free_port(), free_port()
    data = base_config(redis_url, tmp_path, stratum_port=stratum, admin_port=admin)
    data["chain"]["devnet"]["nbits"] = RARE_BLOCKS_NBITS
    data["stratum"]["ports"][0].update(start_difficulty=DIFFICULTY, min_difficulty=DIFFICULTY,
                                       max_difficulty=DIFFICULTY)
    data["admin"].update(snapshot_interval_seconds=0.5)
    config_path = write_config(tmp_path / "pool.toml", data)
    rng = random.Random(11)
    ips = {"DE": draw_ips("DE", len(MINERS), rng), "US": draw_ips("US", len(MINERS), rng)}
    fleet = KnownFleet(DIFFICULTY)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        async with aiohttp.ClientSession() as session, chromium() as page:
            api = Api(session, f"http://127.0.0.1:{admin}")
            async with pool_up(config_path, tmp_path / "pool.log", redis, api) as supervisor:
                for i, (name, (rate, country)) in enumerate(MINERS.items()):
                    fleet.add(Metronome("127.0.0.1", stratum, name, public_ip=ips[country][i], rate=rate,
                                        region=country, source_address=f"127.0.0.{20 + i}"))
                await page.send("Page.navigate", url=f"http://127.0.0.1:{admin}/#token={READ_TOKEN}")
                await spread(api, redis, fleet)

                # 30 s after the pool started: every window covers those 30 s.
                await wait_for(lambda: over(api, 30), 60, "30 s of the pool", interval=0.2)
                seen = await read_all(api, page)
                check_truth(seen, fleet, "30 s after start")
                check_agreement(seen, "30 s after start")

                # kill -9 of the worker process that does not serve the admin API.
                where = await spread(api, redis, fleet)
                victims = [name for name, index in where.items() if index == 1]
                before = seen
                pid = worker_pids(supervisor.pid)[1]
                killed_at = time.time()
                accepted = sum(m.stats.accepted for m in fleet.miners.values())
                os.kill(pid, signal.SIGKILL)
                await wait_for(lambda: worker_pids(supervisor.pid).get(1, pid) != pid, 30, "worker 1 started again")
                await wait_for(lambda: restarted(redis, 1, killed_at), 60, "worker 1 serving again", interval=0.2)
                await wait_for(lambda: mining_again(fleet, killed_at, 3), 30, f"{victims} mining again")
                # Every share accepted before the kill is in the books (the journal replayed it).
                await wait_for(lambda: counted(api, accepted), 30, "the killed worker's shares in the books")
                after = await read_all(api, page)
                check_truth(after, fleet, "after kill -9 of worker 1")
                check_agreement(after, "after kill -9 of worker 1")
                check_steady(before, after, fleet, "kill -9 of worker 1")
                before = after
                await spread(api, redis, fleet)     # its miners moved to worker 0: both hold some again

                # A miner leaves: its 1 m figure reaches 0 within its window, live; by the time its 5 m
                # window has passed too (the steady state), its region's share has fallen to the rest's.
                leaver = fleet.miners[LEAVER]
                await leaver.finish()
                last = leaver.accepted_at[-1]
                gone = await wait_for(lambda: worker_window_empty(api, LEAVER, "1m"), 60 + 30, f"{LEAVER}'s 1m at 0")
                emptied = time.time() - last
                assert gone["1m"]["hashrate"] == 0 and gone["5m"]["hashrate"] > 0, gone
                # A 1 m window starts on the first 10 s edge at or after now - 60 s.
                assert 50 <= emptied <= 60 + 10, emptied
                after = await read_all(api, page)
                check_truth(after, fleet, f"{LEAVER}'s 1 m window passed")
                check_agreement(after, f"{LEAVER}'s 1 m window passed")
                assert after.regions["5m"]["DE"]["share"] < before.regions["5m"]["DE"]["share"]

                # Steady state: the pool's 5 m window wholly inside the run, and the leaver's 5 m window
                # wholly after it left.
                await wait_for(lambda: worker_window_empty(api, LEAVER, "5m"), 300 + 60, f"{LEAVER}'s 5m at 0",
                               interval=0.5)
                await wait_for(lambda: over(api, 300), 60, "5 minutes of the pool", interval=0.5)
                steady = await read_all(api, page)
                check_truth(steady, fleet, "steady state")
                check_agreement(steady, "steady state")
                staying = [name for name in MINERS if name != LEAVER]
                for country in ("DE", "US"):   # the shares are the staying miners' (10:10), within the intervals
                    region = steady.regions["5m"][country]
                    share = fleet.nominal(set(fleet.in_region(country)) & set(staying)) / fleet.nominal(staying)
                    pool = steady.pool["5m"]["hashrate"]
                    assert region["low"] / pool <= share <= region["high"] / pool, (country, region, share)
                fleet.check_difficulty()
            # The pool restarts.
            stopped_at = time.time()
            async with pool_up(config_path, tmp_path / "pool2.log", redis, api):
                await wait_for(lambda: mining_again(fleet, stopped_at, 3), 60, "the fleet mining again")
                after = await read_all(api, page)
                check_truth(after, fleet, "after a pool restart")
                check_agreement(after, "after a pool restart")
                # The pool was off the air from its last share before the stop to its first after the
                # start; every miner lost those seconds (the truth above has them), and a window that
                # counts them as observed time dips by their part of it.
                outage = silence(fleet, stopped_at)
                print(f"pool restart: {outage:.1f} s without shares")
                check_steady(steady, after, fleet, "pool restart", outage=outage)
                await fleet.stop()
    finally:
        await fleet.stop()
        await redis.aclose()


def silence(fleet: KnownFleet, at: float) -> float:
    """Seconds between the fleet's last accepted share before `at` and its first after."""
    shares = sorted(t for m in fleet.miners.values() for t in m.accepted_at)
    i = bisect.bisect_right(shares, at)
    return shares[i] - shares[i - 1]


async def over(api: Api, seconds: float) -> bool:
    return await age(api) >= seconds


async def counted(api: Api, accepted: int) -> bool:
    return int((await api.get("/api/v1/overview"))["pool"]["hashrate"]["1h"]["shares"]) >= accepted


async def worker_window_empty(api: Api, name: str, window: str) -> dict[str, Any] | None:
    """The worker's figures once its `window` holds no share."""
    status, body = await api.call("GET", f"/api/v1/workers/{name}", ADMIN)
    assert status == 200, body
    figures = body["summary"]["hashrate"]
    return figures if figures[window]["shares"] == 0 else None
