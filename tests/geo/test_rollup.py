from __future__ import annotations

import datetime as dt
import re

import pytest
import redis.asyncio as aioredis

from pool.config.geo import GeoConfig
from pool.geo import GeoLocator, GeoRollup, NetworkDifficultyRecorder, apply_ops, miner_id
from pool.shares.redis_ops import MAX_OP_ARGS
from pool.stratum.events import ShareRecord

T0 = dt.datetime(2026, 11, 21, 23, 59, 30, tzinfo=dt.UTC).timestamp()
IPS = {"8.8.8.8", "81.2.69.160", "2001:4860:4860::8888"}


def records(locator: GeoLocator) -> list[ShareRecord]:
    out = []
    for i, ip in enumerate(sorted(IPS)):
        country, subdivision, hosting = locator.tag_connection(ip)
        for j in range(5):
            out.append(ShareRecord(
                timestamp=T0 + 15 * j, account=f"acct{i}", worker=f"acct{i}.rig{j % 2}", difficulty=100.0 * (i + 1),
                share_difficulty=1e6, height=1, country=country, subdivision=subdivision, hosting=hosting,
                farm_proxy=(i == 0), firmware="Bitmain" if j % 2 else "MicroBT"))
    return out


def test_every_key_carries_its_days_hash_tag(locator: GeoLocator) -> None:
    ops = GeoRollup(GeoConfig(), lambda: locator.databases).ops(records(locator), "b1")
    tags = set()
    # The regions' first shares are one sorted set for every day (its own slot).
    firsts = [op for op in ops if op.key == "gs:{geo:first}:first"]
    assert len(firsts) == 1 and firsts[0].command == "ZADD" and firsts[0].args[0] == "LT"
    assert dict(zip(firsts[0].args[2::2], map(float, firsts[0].args[1::2]), strict=True))["*"] == T0
    for op in ops:
        if op in firsts:
            continue
        match = re.match(r"^gs:\{geo:(\d{8})\}:", op.key)
        assert match, op.key
        tags.add(match.group(1))
    # Shares at 23:59:30..00:00:30 span two UTC days, so two hash tags.
    assert tags == {"20261121", "20261122"}
    assert {op.command for op in ops} <= {"HINCRBYFLOAT", "HINCRBY", "PFADD", "ZINCRBY", "ZREMRANGEBYRANK",
                                          "EXPIRE", "ZADD"}


async def test_ops_applied_to_redis_give_exact_sums_and_store_no_ip(locator: GeoLocator,
                                                                   aredis: aioredis.Redis) -> None:
    recs = records(locator)
    rollup = GeoRollup(GeoConfig(), lambda: locator.databases)
    await apply_ops(aredis, rollup.ops(recs[:7], "b1"))
    await apply_ops(aredis, rollup.ops(recs[7:], "b2"))
    day1, day2 = "gs:{geo:20261121}", "gs:{geo:20261122}"
    us = "US|California"
    expected_us = sum(r.difficulty for r in recs if r.country == "US" and r.subdivision == "California")
    days = [await aredis.hgetall(f"{day}:d") for day in (day1, day2)]
    got = sum(float(d.get(f"d|{us}".encode(), 0)) for d in days)
    assert got == pytest.approx(expected_us)
    total_count = sum(int(v) for d in days for f, v in d.items() if f.startswith(b"n|"))
    assert total_count == len(recs)
    # Hour and minute buckets carry the same totals as the day.
    minute = await aredis.hgetall(f"{day1}:m:2359")
    minute_fw = {f: v for f, v in (await aredis.hgetall(f"{day1}:h:23")).items() if not f.startswith(b"f")}
    hour = await aredis.hgetall(f"{day1}:h:23")
    day = await aredis.hgetall(f"{day1}:d")
    assert hour == day and minute == minute_fw   # minute buckets carry no firmware split
    # Farm-proxy difficulty and firmware split.
    proxy = sum(r.difficulty for r in recs if r.farm_proxy and r.timestamp < T0 + 30)
    assert sum(float(v) for f, v in day.items() if f.startswith(b"p|")) == pytest.approx(proxy)
    fw = sum(float(v) for f, v in day.items() if f.startswith(b"fd|"))
    assert fw == pytest.approx(sum(float(v) for f, v in day.items() if f.startswith(b"d|")))
    # Distinct miners and per-miner sums.
    # One account (two workers) in California: one miner under the default identity (the account).
    assert await aredis.pfcount(f"{day1}:u:d:{us}") == 1
    top = dict(await aredis.zrange(f"{day1}:z:{us}", 0, -1, withscores=True))
    assert set(top) == {miner_id(r.account).encode() for r in recs if r.country == "US"}
    # TTLs on every key.
    async for key in aredis.scan_iter("gs:*"):
        if key != b"gs:{geo:first}:first":       # first observations are kept (one member per region)
            assert await aredis.ttl(key) > 0, key
    # The database in use is recorded per day.
    dbs = await aredis.hgetall(f"{day1}:db")
    assert list(dbs) == [b"location|DBIP-City-Lite|2026-06-05"]
    # No IP address, no worker name anywhere: keys, fields, members, values.
    blobs = []
    async for key in aredis.scan_iter("*"):
        blobs.append(key)
        kind = await aredis.type(key)
        if kind == b"hash":
            for f, v in (await aredis.hgetall(key)).items():
                blobs += [f, v]
        elif kind == b"zset":
            blobs += await aredis.zrange(key, 0, -1)
        else:
            blobs.append(await aredis.get(key))
    text = b"\n".join(blobs)
    for needle in [*IPS, "rig0", "acct0"]:
        assert needle.encode() not in text


async def test_trimming_keeps_the_largest_miners(locator: GeoLocator, aredis: aioredis.Redis) -> None:
    config = GeoConfig(top_miners_kept=40, top_read_depth=32)
    recs = [ShareRecord(timestamp=T0 - 100, account=f"a{i}", worker=f"a{i}.w", difficulty=float(i + 1),
                        share_difficulty=1.0, height=1, country="KZ", subdivision="Almaty") for i in range(100)]
    await apply_ops(aredis, GeoRollup(config).ops(recs, "b"))
    kept = await aredis.zrange("gs:{geo:20261121}:z:KZ|Almaty", 0, -1, withscores=True)
    assert len(kept) == 40 and min(score for _, score in kept) == 61.0


async def test_network_difficulty_recorder(aredis: aioredis.Redis) -> None:
    recorder = NetworkDifficultyRecorder(aredis, GeoRollup(GeoConfig()))
    await recorder.record_network_difficulty(1.5e14, at=T0)
    await recorder.record_network_difficulty(1.6e14, at=T0 + 5)   # same minute: replaces, not adds
    assert await aredis.hgetall("gs:{geo:20261121}:net") == {b"2359": b"160000000000000.0"}
    with pytest.raises(ValueError):
        await recorder.record_network_difficulty(0)


async def test_workers_as_miners(locator: GeoLocator, aredis: aioredis.Redis) -> None:
    recs = [r for r in records(locator) if r.timestamp < T0 + 30]
    await apply_ops(aredis, GeoRollup(GeoConfig(miner_identity="worker")).ops(recs, "b"))
    assert await aredis.pfcount("gs:{geo:20261121}:u:d:US|California") == 2


async def test_a_batch_of_thousands_of_miners_in_one_region_counts_them_all(aredis: aioredis.Redis) -> None:
    """8,000 distinct miners in one region and hour are more members than one op may carry
    (MAX_OP_ARGS): the distinct-miner sets are written in parts, none is dropped by the ledger."""
    recs = [ShareRecord(timestamp=T0 - 100, account=f"a{i}", worker=f"a{i}.w", difficulty=1.0,
                        share_difficulty=1.0, height=1, country="KZ", subdivision="Almaty") for i in range(8000)]
    ops = GeoRollup(GeoConfig()).ops(recs, "b")
    assert max(len(op.args) for op in ops) <= MAX_OP_ARGS
    await apply_ops(aredis, ops)
    counted = await aredis.pfcount("gs:{geo:20261121}:u:d:KZ|Almaty")
    assert abs(counted - 8000) <= 8000 * 0.02            # HyperLogLog: 0.81 % standard error
