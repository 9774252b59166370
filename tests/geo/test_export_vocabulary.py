"""One export vocabulary: `geostratum export` and GET /api/v1/exports/NAME take the same names, the
same inclusive range and the same default (the current period to date), and give the same bytes.
Real rollups in a real redis-server, the real export provider behind a real admin server."""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import io
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
import redis.asyncio as aioredis

from pool.admin import AdminServer
from pool.admin_wiring.exports import GeoExports
from pool.cli import build_parser
from pool.config.geo import GeoConfig
from pool.geo import GeoLocator, GeoRollup, apply_ops
from pool.geo.export_cli import run
from pool.geo.exports import EXPORTS, LAYOUTS, SHORTHANDS
from tests.admin.conftest import READ, make_config
from tests.admin.providers import InMemoryPool
from tests.geo.fleet_sim import build_fleet, shares

TODAY = dt.datetime.now(dt.UTC).date()
MONTH_START = TODAY.replace(day=1)
MONTH_END = (MONTH_START + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
DAY = dt.date(2026, 3, 10)


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(["export", *argv])


async def cli(redis_url: str, *argv: str) -> tuple[int, bytes, str]:
    """Exit status, the written bytes and stderr of `geostratum export ... -o FILE` (run in a thread: the
    CLI runs its own event loop)."""
    import contextlib
    import tempfile

    err = io.StringIO()
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "out"

        def call() -> int:
            with contextlib.redirect_stderr(err):
                return run(parse([*argv, "--redis-url", redis_url, "-o", str(target), "--no-progress"]))

        code = await asyncio.to_thread(call)
        body = target.read_bytes() if target.exists() else b""
    return code, body, err.getvalue()


async def ingest_day(redis: aioredis.Redis, locator: GeoLocator, day: dt.date, seed: int) -> None:
    rng = random.Random(seed)
    fleet = build_fleet({"US/Texas": 50.0, "CA": 30.0, "CN/Sichuan": 20.0}, 12, locator, rng, total_rate=0.2)
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    await apply_ops(redis, GeoRollup(GeoConfig(), lambda: locator.databases).ops(shares(fleet, start, 1800, rng)))


@pytest.fixture
async def api(aredis: aioredis.Redis) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    data = InMemoryPool()
    exports = GeoExports(SimpleNamespace(geo=GeoConfig(), redis=SimpleNamespace(key_prefix="gs")),  # type: ignore[arg-type]
                         SimpleNamespace(client=aredis), object())  # type: ignore[arg-type]
    server = AdminServer(make_config(), data, data, exports, data, environ={})  # type: ignore[arg-type]
    await server.start()
    async with aiohttp.ClientSession(headers=READ) as session:
        yield server.url, session
    await server.stop()


async def test_the_api_lists_the_clis_names(api: tuple[str, aiohttp.ClientSession]) -> None:
    url, session = api
    async with session.get(f"{url}/api/v1/exports") as response:
        kinds = await response.json()
    assert [k["name"] for k in kinds] == list(EXPORTS)
    assert set(LAYOUTS) == set(EXPORTS) | set(SHORTHANDS)
    assert {"regions-csv", "regions-json", "firmware-csv", "firmware-json", "chart-svg"} <= set(SHORTHANDS)


async def test_cli_and_api_give_the_same_bytes(locator: GeoLocator, aredis: aioredis.Redis, redis_url: str,
                                              api: tuple[str, aiohttp.ClientSession]) -> None:
    await ingest_day(aredis, locator, DAY, 1)
    url, session = api
    day = DAY.isoformat()
    for name, export in EXPORTS.items():
        for fmt in export.formats:
            code, body, err = await cli(redis_url, "--layout", name, "--format", fmt, "--period", "daily",
                                        "--start", day, "--end", day)
            assert code == 0, err
            assert f"daily periods {day}..{day}" in err
            async with session.get(f"{url}/api/v1/exports/{name}",
                                   params={"period": "daily", "start": day, "end": day, "format": fmt}) as response:
                assert response.status == 200, await response.text()
                assert response.headers["X-Geostratum-Range"] == f"daily periods {day}..{day}"
                api_body = await response.read()
            if name in ("regions", "firmware", "ccaf-contribution", "chart"):   # carry a generation time
                api_body = re.sub(rb"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", b"T", api_body)
                body = re.sub(rb"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", b"T", body)
            assert body == api_body, (name, fmt)
    # The shorthand is the same export in both.
    code, shorthand, _ = await cli(redis_url, "--layout", "regions-json", "--period", "daily", "--start", day,
                                   "--end", day)
    async with session.get(f"{url}/api/v1/exports/regions-json",
                           params={"period": "daily", "start": day, "end": day}) as response:
        assert response.status == 200 and response.content_type == "application/json"
    assert code == 0 and shorthand.startswith(b"{")


async def test_daily_layout_says_daily_and_empty_days_cost_one_line(
        locator: GeoLocator, aredis: aioredis.Redis, redis_url: str) -> None:
    await ingest_day(aredis, locator, DAY, 2)
    first, last = DAY - dt.timedelta(days=40), DAY + dt.timedelta(days=40)      # 81 days, one with data
    code, body, _ = await cli(redis_url, "--layout", "ccaf-countries", "--period", "daily",
                              "--start", first.isoformat(), "--end", last.isoformat())
    assert code == 0
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["date", "country", "daily_hashrate_%", "daily_absolute_hashrate_EH/S"]
    assert {r[0] for r in rows[1:]} == {DAY.isoformat()}
    # CCAF's two decimals: "50.00%"-like strings; no network difficulty sampled: the EH/s is unknown (empty).
    assert all(re.fullmatch(r"\d{1,3}\.\d\d%", r[2]) and r[3] == "" for r in rows[1:])

    code, body, _ = await cli(redis_url, "--layout", "regions", "--period", "daily",
                              "--start", first.isoformat(), "--end", last.isoformat())
    lines = body.decode().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    assert sum(1 for line in comments if line.startswith("# generator:")) == 1     # the metadata header once
    assert sum(1 for line in comments if line.endswith(": no accepted shares")) == 80
    assert sum(1 for line in comments if line.startswith("# period ")) == 81       # one line per day
    assert "# range: daily periods" in body.decode() and "81 periods, 80 without data" in body.decode()
    table = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    codes = {row["subdivision"]: row["subdivision_code"] for row in table if row["level"] == "subdivision"}
    assert codes == {"Texas": "US-TX", "Sichuan": "CN-SC", "Other": ""}     # Canada's provinces fold
    # Every row's 95 % interval (from its share count) brackets its average hashrate.
    for row in table:
        rate, low, high = (float(row[k]) for k in ("average_hashrate", "average_hashrate_low", "average_hashrate_high"))
        assert int(row["accepted_shares"]) > 0 and low < rate < high
    weekly = await cli(redis_url, "--layout", "ccaf-countries", "--period", "weekly", "--start", DAY.isoformat(),
                       "--end", DAY.isoformat())
    assert weekly[1].startswith(b"date,country,weekly_hashrate_%,weekly_absolute_hashrate_EH/S\r\n")


async def test_default_is_the_current_period_to_date(locator: GeoLocator, aredis: aioredis.Redis, redis_url: str,
                                                    api: tuple[str, aiohttp.ClientSession]) -> None:
    url, session = api
    code, _, err = await cli(redis_url, "--layout", "ccaf-us")
    assert code == 3
    assert f"no data for monthly periods {MONTH_START}..{MONTH_END} (current period to date)" in err
    async with session.get(f"{url}/api/v1/exports/ccaf-us") as response:
        assert response.status == 404 and "no data for monthly periods" in (await response.json())["reason"]

    await ingest_day(aredis, locator, TODAY, 3)
    code, body, err = await cli(redis_url, "--layout", "ccaf-us")
    assert code == 0 and "(current period to date)" in err
    assert body.splitlines()[1] == f"{MONTH_START},Texas,100.00".encode()
    async with session.get(f"{url}/api/v1/exports/ccaf-us") as response:
        assert response.status == 200
        assert response.headers["X-Geostratum-Range"] == (f"monthly periods {MONTH_START}..{MONTH_END} "
                                                          "(current period to date)")
        assert await response.read() == body


async def test_bad_names_dates_and_paths(redis_url: str, tmp_path: Path,
                                         api: tuple[str, aiohttp.ClientSession]) -> None:
    url, session = api
    for argv, message in (
        (["--layout", "regions", "--format", "svg"], "layout 'regions' has no format 'svg'"),
        (["--layout", "regions-json", "--format", "csv"], "layout 'regions-json' is format json"),
        (["--start", "2026-03-10"], "give both --start and --end"),
        (["--start", "2026-03-10", "--end", "2026-03-09"], "end 2026-03-09 is before start 2026-03-10"),
        (["--start", "2026-02-30", "--end", "2026-03-09"], "--start must be a date YYYY-MM-DD"),
    ):
        code, _, err = await cli(redis_url, *argv)
        assert code == 2 and message in err, (argv, err)
        assert err.count("\n") == 1, err                      # one line, no traceback
    missing = tmp_path / "nowhere" / "x.csv"
    code = await asyncio.to_thread(run, parse(["--redis-url", redis_url, "-o", str(missing)]))
    assert code == 2 and not missing.parent.exists()
    async with session.get(f"{url}/api/v1/exports/regions-xml") as response:
        assert response.status == 404
    async with session.get(f"{url}/api/v1/exports/chart", params={"format": "csv"}) as response:
        assert response.status == 400 and "format" in (await response.json())["reason"]
    async with session.get(f"{url}/api/v1/exports/regions", params={"start": "2026-03-10",
                                                                     "end": "2026-03-09"}) as response:
        assert response.status == 400 and "is before start" in (await response.json())["reason"]
