"""The read side under a big pool: latency of the figures endpoints for 50,000 workers in 5,000 accounts.

Starts its own redis-server on a free loopback port, a real pool process on the embedded devnet (its
admin API on 127.0.0.1), and fills the books through the pool's own ledger: every worker submits
shares spread over the last `--minutes` minutes (the last-seen sets, hashrate buckets, first
observations and geo rollups are what the running pool would have written). Then it times, one
request after another over HTTP:

    overview      GET /api/v1/overview
    top100        GET /api/v1/workers?limit=100&sort=hashrate (the 100 fastest of 50,000)
    account       GET /api/v1/workers?account=<one of 5,000> (its 10 workers)

and prints median, p99 and max per endpoint, then a `RESULT {json}` line. The baseline measured in
the same run is a GET /api/v1/health (no book reads), so ratios survive a noisy machine.

With `--top-seconds N` it also times the top-100 list back to back for N seconds ("top100 for N s"):
over 60 s or more that spans a minute boundary, where the 5-minute rank windows move, and whatever
else the pool does once a minute, so its p99 is the tail a dashboard polling the list sees (the
slowest requests are listed with the second of the minute they started at).

    .venv/bin/python benchmarks/bench_read.py [--workers 50000] [--accounts 5000] [--requests 60] [--top-seconds 65]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import shutil
import statistics
import time
from typing import Any

import aiohttp
from bench_ledger import start_redis  # the same throw-away redis-server (benchmarks/ is on sys.path)

from pool.app import PoolApp
from pool.config import from_dict
from pool.stratum.events import ShareRecord

TOKEN = "bench-read-token-0123456789abcdef"
COUNTRIES = [("US", "Texas"), ("US", "Georgia"), ("CN", "Sichuan"), ("KZ", ""), ("CA", "Quebec"),
             ("DE", "Bavaria"), ("RU", "Irkutsk"), ("MY", ""), ("NO", ""), ("IR", "")]


def pool_config(url: str, workdir: str) -> dict[str, Any]:
    return {
        "pool": {"name": "bench", "data_dir": f"{workdir}/var"},
        "chain": {"backend": "devnet", "network": "devnet", "devnet": {"rpc_port": 0}},
        "payouts": {"scheme": "solo"},          # no PostgreSQL books on devnet: the figures are the point
        "stratum": {"ports": [{"port": 0, "host": "127.0.0.1"}]},
        "redis": {"url": url, "key_prefix": "gs"},
        "ledger": {"journal_dir": f"{workdir}/journal", "journal_fsync": False},
        "admin": {"host": "127.0.0.1", "port": 0, "read_tokens": [TOKEN], "admin_tokens": [TOKEN + "-admin"],
                  "rate_limit_per_second": 1e6, "rate_limit_burst": 1_000_000, "max_page_size": 500},
    }


async def fill(app: PoolApp, workers: int, accounts: int, minutes: int, per_worker: int,
               rng: random.Random) -> int:
    """Shares of every worker over the last `minutes` (difficulty drawn per worker, so rates differ)."""
    assert app.ledger is not None
    now = time.time()
    count = 0
    for w in range(workers):
        account = f"acct{w % accounts:05d}"
        name = f"{account}.rig{w // accounts:02d}"
        difficulty = 2.0 ** rng.randrange(10, 20)
        country, subdivision = COUNTRIES[w % len(COUNTRIES)]
        for _ in range(per_worker):
            app.ledger.add(ShareRecord(
                timestamp=now - rng.uniform(0, minutes * 60), account=account, worker=name,
                difficulty=difficulty, share_difficulty=difficulty * 2, height=1, country=country,
                subdivision=subdivision))
            count += 1
        if w % 500 == 499:           # batches of ~3,000 shares, as a busy pool cuts them
            await app.ledger.flush()
    await app.ledger.flush()
    return count


async def timed(session: aiohttp.ClientSession, url: str, requests: int, seconds: float = 0.0,
                starts: list[float] | None = None) -> list[float]:
    """`requests` requests one after another, or as many as fit in `seconds` when given (their start
    times appended to `starts`)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    out = []
    until = time.time() + seconds
    while (time.time() < until) if seconds else len(out) < requests:
        if starts is not None:
            starts.append(time.time())
        started = time.perf_counter()
        async with session.get(url, headers=headers) as response:
            await response.read()
            if response.status not in (200, 503):      # health is 503 without a live node check passing
                raise RuntimeError(f"{url}: HTTP {response.status}")
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered), 2), "p99_ms": round(p99, 2),
            "max_ms": round(ordered[-1], 2), "requests": len(ordered)}


async def run(args: argparse.Namespace, url: str, workdir: str) -> dict[str, Any]:
    rng = random.Random(args.seed)
    app = PoolApp(from_dict(pool_config(url, workdir)))
    await app.start()
    try:
        assert app.admin is not None
        started = time.perf_counter()
        shares = await fill(app, args.workers, args.accounts, args.minutes, args.shares_per_worker, rng)
        fill_seconds = time.perf_counter() - started
        base = app.admin.url
        account = f"acct{rng.randrange(args.accounts):05d}"
        endpoints = {
            "health (baseline)": f"{base}/api/v1/health",
            "overview": f"{base}/api/v1/overview",
            "top100": f"{base}/api/v1/workers?limit=100&sort=hashrate",
            "account": f"{base}/api/v1/workers?account={account}",
        }
        results: dict[str, Any] = {}
        async with aiohttp.ClientSession() as session:
            async with session.get(endpoints["top100"], headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                page = await r.json()
            assert page["total"] == args.workers, page["total"]
            for name, endpoint in endpoints.items():
                await timed(session, endpoint, 2)                       # warm up
                results[name] = summary(await timed(session, endpoint, args.requests))
            if args.top_seconds:
                starts: list[float] = []
                samples = await timed(session, endpoints["top100"], 0, args.top_seconds, starts)
                name = f"top100 for {args.top_seconds:g} s"
                results[name] = summary(samples)
                slowest = sorted(zip(samples, starts, strict=True), reverse=True)[:5]
                results[name]["slowest"] = [[round(ms, 1), round(at % 60, 2)] for ms, at in slowest]
        baseline = results["health (baseline)"]["median_ms"]
        for figures in results.values():
            figures["median_vs_baseline"] = round(figures["median_ms"] / baseline, 1)
        return {"workers": args.workers, "accounts": args.accounts, "shares": shares,
                "fill_seconds": round(fill_seconds, 1), "endpoints": results,
                "machine": f"{platform.machine()} {platform.processor() or ''} Python {platform.python_version()}"}
    finally:
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=50_000)
    parser.add_argument("--accounts", type=int, default=5_000)
    parser.add_argument("--minutes", type=int, default=10, help="shares spread over this many minutes")
    parser.add_argument("--shares-per-worker", type=int, default=6)
    parser.add_argument("--requests", type=int, default=60, help="timed requests per endpoint")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--top-seconds", type=float, default=0.0,
                        help="also time the top-100 list back to back for this long (60+ spans a minute boundary)")
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    proc, url, workdir = start_redis()
    try:
        result = asyncio.run(run(args, url, workdir))
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    for name, figures in result["endpoints"].items():
        print(f"{name:>18}: median {figures['median_ms']:8.1f} ms  p99 {figures['p99_ms']:8.1f} ms  "
              f"max {figures['max_ms']:8.1f} ms  ({figures['median_vs_baseline']}x baseline, "
              f"{figures['requests']} requests)")
        if "slowest" in figures:
            print(" " * 20 + "slowest (ms, second of the minute): " + ", ".join(
                f"{ms} at {at}" for ms, at in figures["slowest"]))
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
