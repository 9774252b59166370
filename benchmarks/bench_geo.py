"""Geo benchmark: IP lookups per second (cached, uncached), rollup contributor throughput, and the
time to export a month of minute-bucketed shares over 200 real regions from a real redis-server.

    .venv/bin/python benchmarks/bench_geo.py [--share-every SECONDS] [--quick]

The month is written through the real contributor (GeoRollup.ops); its ops go to Redis as raw RESP
on one socket (what a ledger with a fast path would do), so filling the month stays within minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hiredis
import redis.asyncio as aioredis

from pool.config.geo import GeoConfig
from pool.geo import GeoLocator, GeoRollup, draw_ips, export
from pool.shares.redis_ops import RedisOp
from pool.sim.redis_server import RedisProcess
from pool.stratum.events import ShareRecord

COUNTRIES = ("US", "CN", "RU", "KZ", "CA", "DE", "MY", "IR", "NO", "SE", "FI", "IS", "GB", "FR", "NL", "BR",
             "AR", "PY", "JP", "KR", "AU", "IN", "TH", "VN", "ID", "TR", "UA", "GE", "AE", "ET", "ZA", "MX")


def real_ips(n: int, rng: random.Random) -> list[str]:
    ips: list[str] = []
    while len(ips) < n:
        ips += draw_ips(rng.choice(COUNTRIES), 50, rng)
        if rng.random() < 0.2:
            ips += draw_ips(rng.choice(("US", "DE", "CN", "JP")), 10, rng, ipv6=True)
    return ips[:n]


def bench_lookups(locator: GeoLocator, ips: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    for ip in ips:
        locator.lookup_uncached(ip)
    uncached = len(ips) / (time.perf_counter() - start)
    working = ips[: min(len(ips), locator.config.cache_size)]
    for ip in working:
        locator.tag_connection(ip)
    rounds = max(1, 200_000 // len(working))
    start = time.perf_counter()
    for _ in range(rounds):
        for ip in working:
            locator.tag_connection(ip)
    cached = rounds * len(working) / (time.perf_counter() - start)
    return {"lookups_per_s_uncached": uncached, "lookups_per_s_cached": cached}


def regions_from_db(locator: GeoLocator, rng: random.Random, want: int) -> dict[tuple[str, str], list[str]]:
    """`want` real (country, subdivision) regions, each with the IPs drawn for it."""
    found: dict[tuple[str, str], list[str]] = {}
    while len(found) < want:
        for ip in draw_ips(rng.choice(COUNTRIES), 40, rng):
            country, subdivision, _ = locator.tag_connection(ip)
            if len(found) < want or (country, subdivision) in found:
                found.setdefault((country, subdivision), []).append(ip)
    return found


def encode(ops: list[RedisOp]) -> bytes:
    out = []
    for op in ops:
        parts = [op.command.encode(), op.key.encode(), *(str(a).encode() for a in op.args)]
        out.append(b"*%d\r\n" % len(parts))
        for p in parts:
            out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


def apply_raw(sock: socket.socket, reader: hiredis.Reader, ops: list[RedisOp]) -> None:
    sock.sendall(encode(ops))
    pending = len(ops)
    while pending:
        reader.feed(sock.recv(1 << 20))
        while pending:
            reply = reader.gets()
            if reply is False:
                break
            if isinstance(reply, hiredis.ReplyError):
                raise RuntimeError(f"redis error: {reply}")
            pending -= 1


def fill_month(url_port: int, regions: dict, rollup: GeoRollup, first: dt.date, days: int, share_every: int,
               miners_per_region: int, rng: random.Random) -> dict[str, float]:
    sock = socket.create_connection(("127.0.0.1", url_port))
    reader = hiredis.Reader()
    region_list = list(regions)
    phase = {r: rng.uniform(0, share_every) for r in region_list}
    start = dt.datetime(first.year, first.month, first.day, tzinfo=dt.UTC).timestamp()
    records = ops_count = 0
    gen_s = apply_s = 0.0
    for hour in range(days * 24):
        t0 = start + hour * 3600
        batch = []
        for (country, subdivision) in region_list:
            t = t0 + phase[(country, subdivision)]
            i = 0
            while t < t0 + 3600:
                worker = f"{country}-{subdivision}.w{(hour * 7 + i) % miners_per_region}"
                batch.append(ShareRecord(timestamp=t, account=worker, worker=worker,
                                         difficulty=65536.0, share_difficulty=70000.0, height=1,
                                         country=country, subdivision=subdivision,
                                         firmware=("Bitmain", "MicroBT", "Canaan")[i % 3]))
                t += share_every
                i += 1
        g = time.perf_counter()
        ops = rollup.ops(batch, f"h{hour}")
        a = time.perf_counter()
        apply_raw(sock, reader, ops)
        apply_s += time.perf_counter() - a
        gen_s += a - g
        records += len(batch)
        ops_count += len(ops)
        if hour % 24 == 23:
            print(f"  filled day {hour // 24 + 1}/{days}: {records} shares, {ops_count} ops", file=sys.stderr)
    sock.close()
    return {"records": records, "ops": ops_count, "rollup_records_per_s": records / gen_s,
            "apply_ops_per_s": ops_count / apply_s}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--share-every", type=int, default=300,
                        help="seconds between shares of one region (60 fills every region-minute)")
    parser.add_argument("--regions", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="3 days, for a smoke run")
    args = parser.parse_args()
    days = 3 if args.quick else args.days
    rng = random.Random(2026)
    locator = GeoLocator(GeoConfig())
    config = GeoConfig()

    ips = real_ips(20_000, rng)
    lookups = bench_lookups(locator, ips)
    print(f"lookups: uncached {lookups['lookups_per_s_uncached']:,.0f}/s, "
          f"cached {lookups['lookups_per_s_cached']:,.0f}/s ({len(ips)} real IPs, IPv4 and IPv6)")

    regions = regions_from_db(locator, rng, args.regions)
    rollup = GeoRollup(config, lambda: locator.databases)
    # A typical ledger batch: 5000 shares within 100 ms from 2000 connections over all regions.
    conns = [(r, f"{r[0]}-{r[1]}.w{i}") for i, r in enumerate(rng.choice(list(regions)) for _ in range(2000))]
    now = time.time()
    batch = [ShareRecord(timestamp=now + i * 2e-5, account=w, worker=w, difficulty=65536.0,
                         share_difficulty=1e5, height=1, country=r[0], subdivision=r[1], firmware="Bitmain")
             for i, (r, w) in enumerate(rng.choice(conns) for _ in range(5000))]
    start = time.perf_counter()
    for _ in range(20):
        typical_ops = len(rollup.ops(batch, "t"))
    typical = 20 * len(batch) / (time.perf_counter() - start)
    print(f"rollup contributor, typical 5000-share batch: {typical:,.0f} shares/s -> {typical_ops} ops per batch")

    server = RedisProcess()
    server.start()
    try:
        first = dt.date(2026, 10, 1)
        t = time.perf_counter()
        fill = fill_month(server.port, regions, rollup, first, days, args.share_every, 12, rng)
        fill_s = time.perf_counter() - t
        print(f"filled {days} days x {len(regions)} regions (a share per region every {args.share_every} s): "
              f"{fill['records']:,} shares, {fill['ops']:,} ops in {fill_s:.1f} s "
              f"(rollup {fill['rollup_records_per_s']:,.0f} shares/s, redis {fill['apply_ops_per_s']:,.0f} ops/s)")
        client = aioredis.Redis.from_url(server.url)
        minute_keys = 0
        async for _ in client.scan_iter("gs:*:m:*", count=10_000):
            minute_keys += 1
        last = first + dt.timedelta(days=days - 1)
        after = dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp()
        timings = {}
        for layout, period in (("regions-json", "monthly"), ("ccaf-countries", "monthly"),
                               ("firmware-json", "monthly"), ("regions-json", "weekly"),
                               ("regions-json", "daily")):
            t = time.perf_counter()
            result = await export(client, config, layout, period, first, last, now=after)
            timings[f"{layout}/{period}"] = time.perf_counter() - t
            print(f"export {layout} {period}: {timings[f'{layout}/{period}']:.2f} s ({len(result.body):,} bytes)")
        report = json.loads((await export(client, config, "regions-json", "monthly", first, last, now=after)).body)
        published = sum(1 for r in report["periods"][0]["rows"] if r["level"] == "subdivision")
        memory = (await client.info("memory"))["used_memory"]
        await client.aclose()
    finally:
        server.stop()
    result = {
        "lookups_per_s_uncached": round(lookups["lookups_per_s_uncached"]),
        "lookups_per_s_cached": round(lookups["lookups_per_s_cached"]),
        "rollup_shares_per_s_typical_batch": round(typical),
        "rollup_shares_per_s_month_fill": round(fill["rollup_records_per_s"]),
        "regions": len(regions), "days": days, "share_every_s": args.share_every, "shares": fill["records"],
        "minute_buckets": minute_keys, "redis_used_mb": round(memory / 2**20),
        "export_month_regions_json_s": round(timings["regions-json/monthly"], 3),
        "export_month_ccaf_countries_s": round(timings["ccaf-countries/monthly"], 3),
        "export_month_firmware_json_s": round(timings["firmware-json/monthly"], 3),
        "export_weekly_s": round(timings["regions-json/weekly"], 3),
        "export_daily_s": round(timings["regions-json/daily"], 3),
        "published_subdivision_rows": published,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
