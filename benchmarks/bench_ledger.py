"""Ledger throughput: accepted shares per second the batching sustains into one local Redis.

Starts its own redis-server on a free loopback port (or uses --redis-url), feeds ShareRecords from
many workers as fast as one process can, and measures, per mode:

- sustained shares/s from the first add() to the moment every share is in Redis (journal os.write
  per share, fsync per batch, batching, Lua apply), with a geo-like contributor registered;
- Redis round trips per 1,000 shares;
- the hot-path cost of add() alone (ns per call) with and without the journal's os.write, which is
  the price of surviving kill -9.

Usage: python benchmarks/bench_ledger.py [--shares 600000] [--workers 2000] [--accounts 400]
       [--redis-url URL]
Ends with one line: RESULT {json}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from pool.config.ledger import LedgerConfig, RedisConfig
from pool.shares.journal import Journal
from pool.shares.ledger import Ledger
from pool.shares.redis_ops import RedisOp
from pool.stratum.events import ShareRecord


class RegionContributor:
    """Stands in for the geo rollups: one HINCRBYFLOAT per region per batch, in one hash tag."""

    def ops(self, records: list[ShareRecord], batch_id: str) -> list[RedisOp]:
        sums: dict[str, float] = {}
        for r in records:
            sums[r.country] = sums.get(r.country, 0.0) + r.difficulty
        args: list[str | int | float] = []
        for country, diff in sums.items():
            args += [country, repr(diff)]
        return [RedisOp("GS.HINCRF", "{gs:geo}:bench", tuple(args))]


def make_records(count: int, workers: int, accounts: int) -> list[ShareRecord]:
    """Shares round-robin over `workers` rigs spread over `accounts` accounts."""
    countries = ["US", "CN", "KZ", "RU", "CA", "DE", "MY", "IR"]
    now = time.time()
    out = []
    for i in range(count):
        rig = i % workers
        account = f"acct{rig % accounts}"
        out.append(ShareRecord(timestamp=now, account=account, worker=f"{account}.rig{rig}",
                               difficulty=65536.0, share_difficulty=70000.0, height=900_000,
                               country=countries[i % len(countries)]))
    return out


def start_redis() -> tuple[subprocess.Popen[bytes], str, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="gs-bench-redis-")
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(200):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, url, workdir


async def sustained(url: str, records: list[ShareRecord], journal_dir: str, fsync: bool,
                    flush_max_shares: int) -> dict[str, float]:
    redis.Redis.from_url(url).flushall()
    config = LedgerConfig(journal_dir=journal_dir, journal_fsync=fsync, flush_max_shares=flush_max_shares)
    ledger = Ledger(config, RedisConfig(url=url), f"bench{os.getpid()}")
    ledger.add_contributor(RegionContributor())
    await ledger.start()
    add = ledger.add
    chunk = 2000
    started = time.perf_counter()
    for i in range(0, len(records), chunk):
        for record in records[i : i + chunk]:
            add(record)
        await asyncio.sleep(0)  # let the flusher run, as a server's event loop would
    while not await ledger.flush():
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stats = ledger.snapshot()
    await ledger.stop()
    shares, _ = await _totals(url)
    assert shares == len(records), f"ledger holds {shares} shares, {len(records)} were added"
    return {"shares_per_s": len(records) / elapsed, "batches": stats.batches_flushed,
            "round_trips": stats.round_trips, "round_trips_per_1000": 1000 * stats.round_trips / len(records)}


async def _totals(url: str) -> tuple[int, float]:
    client = redis.Redis.from_url(url)
    n, d = client.hmget("{gs:pool}:tot", ["n", "d"])
    return int(float(n or 0)), float(d or 0)


def add_cost(records: list[ShareRecord], journal_dir: str, batch: int) -> dict[str, float]:
    """ns per add(): the in-memory part only, and with the journal's os.write; ms per fsync of one batch."""
    journal = Journal(Path(journal_dir) / "addcost", 1 << 40, fsync=True)
    journal.open()
    pending: list[ShareRecord] = []
    runs_mem, runs_journal, fsyncs = [], [], []
    for _ in range(5):
        pending.clear()
        t = time.perf_counter_ns()
        for r in records:
            pending.append(r)
        runs_mem.append((time.perf_counter_ns() - t) / len(records))
        t = time.perf_counter_ns()
        for r in records:
            journal.append_record(r)
            pending.append(r)
        runs_journal.append((time.perf_counter_ns() - t) / len(records))
        journal.sync()
    for _ in range(20):
        for r in records[:batch]:
            journal.append_record(r)
        t = time.perf_counter_ns()
        journal.sync()
        fsyncs.append((time.perf_counter_ns() - t) / 1e6)
    journal.close()
    return {"add_ns_memory_only": statistics.median(runs_mem),
            "add_ns_with_journal_write": statistics.median(runs_journal),
            "fsync_ms_per_batch": statistics.median(fsyncs)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shares", type=int, default=600_000)
    parser.add_argument("--workers", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--flush-max-shares", type=int, default=1000)
    parser.add_argument("--redis-url", default="")
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    proc = None
    url = args.redis_url
    if not url:
        proc, url, _ = start_redis()
    # The journal goes on the project's disk (not a tmpfs) so fsync costs what it costs in production.
    base = Path(os.environ.get("BENCH_JOURNAL_DIR", Path(__file__).resolve().parents[1] / "var"))
    base.mkdir(parents=True, exist_ok=True)
    journal_dir = tempfile.mkdtemp(prefix="gs-bench-journal-", dir=base)
    try:
        records = make_records(args.shares, args.workers, args.accounts)
        results: dict[str, list[dict[str, float]]] = {"fsync": [], "nofsync": []}
        for _ in range(args.repeats):
            for mode in ("fsync", "nofsync"):
                shutil.rmtree(journal_dir, ignore_errors=True)
                run = asyncio.run(sustained(url, records, journal_dir, mode == "fsync", args.flush_max_shares))
                results[mode].append(run)
                print(f"{mode:8s} {run['shares_per_s']:>10,.0f} shares/s  {run['batches']:>4} batches  "
                      f"{run['round_trips_per_1000']:.2f} round trips / 1000 shares", flush=True)
        cost = add_cost(records[:200_000], journal_dir, args.flush_max_shares)
        print(f"add(): {cost['add_ns_memory_only']:.0f} ns in memory only, "
              f"{cost['add_ns_with_journal_write']:.0f} ns with the journal os.write; "
              f"fsync of one {args.flush_max_shares}-share batch: {cost['fsync_ms_per_batch']:.2f} ms")
    finally:
        shutil.rmtree(journal_dir, ignore_errors=True)
        if proc is not None:
            proc.terminate()
            proc.wait()
    fs = results["fsync"]
    nf = results["nofsync"]
    result = {
        "shares": args.shares,
        "workers": args.workers,
        "accounts": args.accounts,
        "flush_max_shares": args.flush_max_shares,
        "shares_per_s": round(statistics.median(r["shares_per_s"] for r in fs)),
        "shares_per_s_no_fsync": round(statistics.median(r["shares_per_s"] for r in nf)),
        "round_trips_per_1000_shares": round(statistics.median(r["round_trips_per_1000"] for r in fs), 3),
        "add_ns_memory_only": round(cost["add_ns_memory_only"], 1),
        "add_ns_with_journal_write": round(cost["add_ns_with_journal_write"], 1),
        "fsync_ms_per_batch": round(cost["fsync_ms_per_batch"], 3),
        "target_shares_per_s": 150_000,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
