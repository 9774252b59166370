"""Live region windows (dashboard, API, /metrics) divide every region by the seconds the POOL was
observed in the window (it observes all regions at once), never more than the window, so they sum
to the pool: hand-checked against shares of known difficulty and times, written by the real rollup
into Redis."""

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
    # The hour's data starts on the first minute at or after now - 3600 (1,799,996,460); the pool's
    # first share (Bavaria's, 3000 s ago) is later: every region is divided by those 3000 s.
    assert hour.start == 1_799_996_460 and hour.covered_seconds == pytest.approx(3000.0)
    assert [f.covered_seconds for f in by_region.values()] == pytest.approx([3000.0] * 3)
    texas = by_region[("US", "Texas")]
    assert texas.shares == 40 and texas.hashrate == pytest.approx(40 * 10 * H / 3000)
    ohio = by_region[("US", "Ohio")]
    assert ohio.shares == 1800 and ohio.hashrate == pytest.approx(truth * 1800 / 3000)
    assert ohio.low < truth * 1800 / 3000 < ohio.high and not ohio.warming_up
    # Bavaria left 40 minutes ago: its hour average is 600 s of work over the 3000 s observed...
    bavaria = by_region[("DE", "Bayern")]     # DB-IP writes "Bavaria"; ISO and the exports "Bayern"
    assert bavaria.hashrate == pytest.approx(600 * 10 * H / 3000)
    # The regions sum to the pool's figure: all 2,440 shares over the pool's 3000 s.
    assert sum(f.hashrate for f in by_region.values()) == pytest.approx(2440 * 10 * H / 3000)
    # ... and it is gone from the 5-minute window.
    assert {(r.country, r.subdivision) for r in five.items} == {("US", "Texas"), ("US", "Ohio")}
    # The 5-minute window reads whole minutes from the first at or after now - 300 (1,799,999,760):
    # 270 s, never more than the window (it read 330 s before).
    assert five.start == 1_799_999_760 and five.covered_seconds == pytest.approx(270.0)
    ohio5 = next(r.figure for r in five.items if r.subdivision == "Ohio")
    assert (ohio5.covered_seconds, ohio5.shares) == (pytest.approx(270.0), 270)
    assert ohio5.hashrate == pytest.approx(truth)
    assert hour.country_miners == {"US": 2, "DE": 1}


async def test_regions_follow_the_pools_observation_start(aredis: aioredis.Redis) -> None:
    """A pool started 90 s ago (its ledger start) with a region whose first share came 30 s later:
    the region is divided by the pool's 90 s, not by its own 60 s (it had no hashrate before)."""
    records = [share(NOW - 60 + k, "US", "Texas", "tx.rig") for k in range(60)]
    await apply_ops(aredis, GeoRollup(GeoConfig()).ops(records, "b1"))
    live = await read_live_regions(aredis, GeoKeys("gs"), 300, now=NOW, observed_from=NOW - 90)
    texas = live.items[0].figure
    assert live.covered_seconds == texas.covered_seconds == pytest.approx(90.0)
    assert texas.hashrate == pytest.approx(60 * 10 * H / 90)
    # Without the pool's start the geo rollup's own first share of the pool is the start.
    alone = await read_live_regions(aredis, GeoKeys("gs"), 300, now=NOW)
    assert alone.covered_seconds == pytest.approx(60.0)


async def test_live_regions_use_the_exports_names_and_codes(aredis: aioredis.Redis) -> None:
    """Two database releases spelled Ningxia two ways and Bavaria in English: the live reader (the
    dashboard bars, the API, /metrics) publishes one region per subdivision under the exports' and the
    map's spelling and ISO 3166-2 code, its shares, difficulty and miners merged."""
    records = [share(NOW - 100 + k, "CN", "Ningxia Hui Autonomous Region", "a.rig") for k in range(30)]
    records += [share(NOW - 70 + k, "CN", "Ningxia", "b.rig") for k in range(20)]
    records += [share(NOW - 50 + k, "DE", "Bavaria", "c.rig") for k in range(10)]
    records += [share(NOW - 50 + k, "US", "", "d.rig") for k in range(5)]
    await apply_ops(aredis, GeoRollup(GeoConfig()).ops(records, "b1"))
    live = await read_live_regions(aredis, GeoKeys("gs"), 300, now=NOW, observed_from=NOW - 100)
    got = [(r.country, r.subdivision, r.subdivision_code, r.figure.shares, r.miners) for r in live.items]
    assert got == [("CN", "Ningxia", "CN-NX", 50, 2), ("DE", "Bayern", "DE-BY", 10, 1), ("US", "", None, 5, 1)]
    ningxia = live.items[0].figure
    assert ningxia.difficulty == 500.0 and ningxia.hashrate == pytest.approx(500 * H / 100)
    assert live.country_miners == {"CN": 2, "DE": 1, "US": 1}
