"""Live region windows (dashboard, API, /metrics) divide by the seconds each region was observed:
hand-checked against shares of known difficulty and times, written by the real rollup into Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from pool.config.geo import GeoConfig
from pool.geo.keys import GeoKeys
from pool.geo.rollup import GeoRollup, apply_ops
from pool.geo.store import read_live_regions
from pool.stratum.events import ShareRecord

NOW = 1_800_000_030.0
H = 2**32


def share(ts: float, country: str, subdivision: str, worker: str) -> ShareRecord:
    return ShareRecord(timestamp=ts, account=worker.split(".")[0], worker=worker, difficulty=10.0,
                       share_difficulty=20.0, height=1, country=country, subdivision=subdivision)


async def test_a_late_region_reads_its_true_rate_and_a_gone_one_decays(aredis: aioredis.Redis) -> None:
    rollup = GeoRollup(GeoConfig())
    # Texas: one share of difficulty 10 per second for the last 40 s. Bavaria: the same from 50 min to
    # 40 min ago, then nothing. Ohio: 30 minutes at that rate.
    records = [share(NOW - 40 + k, "US", "Texas", "tx.rig") for k in range(40)]
    records += [share(NOW - 3000 + k, "DE", "Bavaria", "by.rig") for k in range(600)]
    records += [share(NOW - 1800 + k, "US", "Ohio", "oh.rig") for k in range(1800)]
    # Two batches, as the ledger would cut them; the first observation survives a second rollup
    # instance (a restarted process), which reports Texas again with a later first share.
    await apply_ops(aredis, rollup.ops(records[:20], "b1"))
    await apply_ops(aredis, GeoRollup(GeoConfig()).ops(records[20:], "b2"))
    keys = GeoKeys("gs")
    hour = await read_live_regions(aredis, keys, 3600, now=NOW)
    five = await read_live_regions(aredis, keys, 300, now=NOW)
    by_region = {(r.country, r.subdivision): r.figure for r in hour.items}
    truth = 10 * H                                      # 10 difficulty per second
    texas = by_region[("US", "Texas")]
    assert texas.covered_seconds == pytest.approx(40.0) and texas.shares == 40
    assert texas.hashrate == pytest.approx(truth)
    assert texas.low < truth < texas.high and not texas.warming_up
    ohio = by_region[("US", "Ohio")]
    assert ohio.covered_seconds == pytest.approx(1800.0) and ohio.hashrate == pytest.approx(truth)
    # Bavaria left 40 minutes ago: its hour average is 600 s of work over the 3000 s observed...
    bavaria = by_region[("DE", "Bavaria")]
    assert bavaria.hashrate == pytest.approx(600 * 10 * H / 3000)
    # ... and it is gone from the 5-minute window.
    assert {(r.country, r.subdivision) for r in five.items} == {("US", "Texas"), ("US", "Ohio")}
    # The 5-minute window reads whole minutes: from 1,799,999,700 (330 s before now) on.
    ohio5 = next(r.figure for r in five.items if r.subdivision == "Ohio")
    assert (ohio5.covered_seconds, ohio5.shares) == (pytest.approx(330.0), 330)
    assert ohio5.hashrate == pytest.approx(truth)
    assert hour.country_miners == {"US": 2, "DE": 1}
