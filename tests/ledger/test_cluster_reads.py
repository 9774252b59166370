"""Reads of the books on a real 3-master Redis Cluster: what the dashboard and the admin API of a pool
on several hosts show (shares written through the ledger with the geo rollup as a contributor)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis.asyncio.cluster as aiocluster

from pool.config.geo import GeoConfig
from pool.geo.keys import GeoKeys
from pool.geo.rollup import GeoRollup
from pool.geo.store import HllUnions, pool_regions, read_live_regions
from pool.stratum.events import ShareRecord
from tests.ledger.conftest import RedisCluster
from tests.ledger.support import flush_until_done, make_ledger

# (worker, country, subdivision): m3 mines from two German states, so Germany has 3 distinct miners.
MINERS = [("m1.a", "DE", "Bavaria"), ("m2.a", "DE", "Hesse"), ("m3.a", "DE", "Bavaria"), ("m3.a", "DE", "Hesse"),
          ("m4.a", "US", "Texas")]


async def test_regions_read_on_a_cluster(cluster: RedisCluster, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, cluster.url, "cluster", urls=cluster.urls)
    ledger.add_contributor(GeoRollup(GeoConfig(), prefix="gs"))
    await ledger.start()
    now = time.time()
    for i in range(40):
        worker, country, subdivision = MINERS[i % len(MINERS)]
        ledger.add(ShareRecord(timestamp=now, account=worker.split(".")[0], worker=worker, difficulty=2.0,
                               share_difficulty=2.0, height=1, country=country, subdivision=subdivision))
    await flush_until_done(ledger)
    await ledger.stop()
    client = aiocluster.RedisCluster.from_url(cluster.url)
    try:
        live = await read_live_regions(client, GeoRollup(GeoConfig(), prefix="gs").keys, 3600, now=now + 1)
    finally:
        await client.aclose()
    cells = {(r.country, r.subdivision): r for r in live.items}      # the exports' names (canonical)
    assert {region: cell.figure.difficulty for region, cell in cells.items()} == {
        ("DE", "Bayern"): 32.0, ("DE", "Hessen"): 32.0, ("US", "Texas"): 16.0}
    assert {region: cell.figure.shares for region, cell in cells.items()} == {
        ("DE", "Bayern"): 16, ("DE", "Hessen"): 16, ("US", "Texas"): 8}
    assert {region: cell.miners for region, cell in cells.items()} == {
        ("DE", "Bayern"): 2, ("DE", "Hessen"): 2, ("US", "Texas"): 1}
    assert live.country_miners == {"DE": 3, "US": 1}


async def test_distinct_miner_unions_on_a_cluster(cluster: RedisCluster) -> None:
    """Exports count distinct miners over days as unions of daily HyperLogLogs from several slots."""
    client = aiocluster.RedisCluster.from_url(cluster.url)
    try:
        await client.pfadd("{day1}:hll", "m1", "m2")
        await client.pfadd("{day2}:hll", "m2", "m3", "m4")
        unions = HllUnions(client, GeoKeys("gs"))
        day1 = unions.add(await client.get("{day1}:hll"))
        day2 = unions.add(await client.get("{day2}:hll"))
        assert await unions.count([[day1, day2], [day2], []]) == [4, 3, 0]
        await unions.close()
    finally:
        await client.aclose()


async def test_windows_and_up_marks_on_a_cluster(cluster: RedisCluster, journal_dir: Path) -> None:
    """The pool's and a worker's windows, its up marks and the regions read on a 3-master cluster."""
    ledger = make_ledger(journal_dir, cluster.url, "cluster", urls=cluster.urls)
    rollup = GeoRollup(GeoConfig(), prefix="gs")
    ledger.add_contributor(rollup)
    await ledger.start()
    try:
        now = time.time()
        for k in range(30):
            ledger.add(ShareRecord(timestamp=now - 59 + 2 * k, account="m1", worker="m1.a", difficulty=2.0,
                                   share_difficulty=2.0, height=1, country="DE", subdivision="Bavaria",
                                   authorized_at=now - 60))
        await flush_until_done(ledger)
        book, client = ledger.reader.hashrate, ledger.client
        pool = await book.pool_windows(client, now=now)
        assert pool.m5.shares == 30 and pool.m5.covered_seconds == pytest.approx(60.0, abs=10.0)
        worker = (await book.windows(client, ledger.keys.shard("m1"), ["w:m1.a"], now=now))["w:m1.a"]
        assert worker.m5.covered_seconds == pytest.approx(60.0) and worker.m5.shares == 30
        live = await pool_regions(client, book, rollup.keys, 60, now)
        assert sum(r.figure.shares for r in live.items) == pool.m1.shares
        assert live.covered_seconds == pytest.approx(pool.m1.covered_seconds)
    finally:
        await ledger.stop()
