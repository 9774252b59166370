from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import random
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from pool.cli import build_parser
from pool.config.geo import GeoConfig
from pool.geo import GeoLocator, GeoRollup, apply_ops
from pool.geo.export_cli import ProgressBar, run
from tests.geo.fleet_sim import build_fleet, shares


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(["export", *argv])


async def test_cli_writes_the_export(locator: GeoLocator, aredis: aioredis.Redis, redis_url: str,
                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(21)
    fleet = build_fleet({"US": 70.0, "CA": 30.0}, 12, locator, rng, total_rate=0.2)
    start = dt.datetime(2026, 3, 15, tzinfo=dt.UTC).timestamp()
    await apply_ops(aredis, GeoRollup(GeoConfig(), lambda: locator.databases).ops(shares(fleet, start, 3600, rng)))
    out = tmp_path / "countries.csv"
    args = parse(["--layout", "ccaf-countries", "--start", "2026-01-01", "--end", "2026-06-30",
                  "--redis-url", redis_url, "-o", str(out), "--progress"])
    # The CLI runs its own event loop, so run it in a worker thread.
    import asyncio
    code = await asyncio.to_thread(run, args)
    assert code == 0
    body = out.read_bytes()
    assert body.startswith(b"date,country,monthly_hashrate_%,monthly_absolute_hashrate_EH/S\r\n")
    rows = list(csv.reader(io.StringIO(body.decode())))[1:]
    assert [(r[0], r[1]) for r in rows] == [("2026-03-01", "United States"), ("2026-03-01", "Canada")]
    assert float(rows[0][2].rstrip("%")) == pytest.approx(70.0, abs=0.5)
    err = capsys.readouterr().err
    assert "181/181 days" in err and f"wrote {out}" in err


async def test_cli_bad_input_is_a_clear_error(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio
    code = await asyncio.to_thread(run, parse(["--start", "2026-13-01", "--end", "2026-12-31",
                                               "--redis-url", redis_url, "-o", "-"]))
    assert code == 2 and "--start must be a date" in capsys.readouterr().err
    code = await asyncio.to_thread(run, parse(["--start", "2026-01-01", "--redis-url", redis_url]))
    assert code == 2 and "both --start and --end" in capsys.readouterr().err


async def test_cli_output_into_a_missing_folder_is_one_line(redis_url: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio
    target = tmp_path / "missing" / "x.csv"
    code = await asyncio.to_thread(run, parse(["--start", "2026-01-01", "--end", "2026-01-31",
                                               "--redis-url", redis_url, "-o", str(target)]))
    err = capsys.readouterr().err
    assert code == 2 and not target.exists()
    assert err == f"error: cannot write {target}: folder {target.parent} does not exist\n"


async def test_cli_empty_range_says_no_data(redis_url: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio
    target = tmp_path / "x.csv"
    code = await asyncio.to_thread(run, parse(["--layout", "ccaf-us", "--period", "daily", "--start", "2025-02-01",
                                               "--end", "2025-02-03", "--redis-url", redis_url, "-o", str(target)]))
    assert code == 3 and not target.exists()
    assert capsys.readouterr().err == "no data for daily periods 2025-02-01..2025-02-03 (nothing written)\n"


def test_cli_unreachable_redis(capsys: pytest.CaptureFixture[str]) -> None:
    from pool.sim.redis_server import free_port
    code = run(parse(["--start", "2026-01-01", "--end", "2026-01-31", "-o", "-",
                      "--redis-url", f"redis://127.0.0.1:{free_port()}/0"]))
    assert code == 1 and "cannot read the rollups" in capsys.readouterr().err


def test_progress_bar_draws_in_place() -> None:
    import io
    stream = io.StringIO()
    bar = ProgressBar(stream, width=10)
    for done in range(0, 101, 10):
        bar(done, 100)
    text = stream.getvalue()
    assert text.count("\r") == 11 and text.endswith("[##########] 100/100 days\n")
