"""An honest fleet beside a flood of hostile connections: what the flood costs the honest miners.

    .venv/bin/python benchmarks/bench_flood.py                 # 60 s phases, ~6,000 hostile connections
    .venv/bin/python benchmarks/bench_flood.py --quick         # what CI runs (tests/sim/test_flood.py)

One StratumServer with the production limits (LimitsConfig defaults: reject budgets, bad-message
budget, authorize timeout, per-IP limits) and a fixed share difficulty. An honest fleet (pool/sim
StratumClients that really hash, from 127.10.x.y) mines on it for one phase alone (the baseline),
then for one phase beside a flood (pool/sim/flood.py, in its own process, from 127.200.x.y): idle
sockets, slowloris, junk lines and reject floods that reconnect whenever the pool drops them.
The fleet shares the server's event loop, so a loop the flood starves shows as fewer shares and slower
replies. Figures: accepted shares per minute, submit-to-reply latency (median, p99) per phase and
their ratios, the process's RSS, and what the pool did to each hostile kind. Ends with `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pool.config.stratum import LimitsConfig, PortConfig, StratumConfig  # noqa: E402
from pool.sim.client import MinerProfile, StratumClient  # noqa: E402
from pool.sim.flood import FloodConfig  # noqa: E402
from pool.stratum.server import StratumServer  # noqa: E402

QUICK = {"miners": 20, "hashrate": 4000.0, "shares_per_second": 3.0, "phase": 8.0, "idle": 1500,
         "slowloris": 1000, "junk": 300, "rejecters": 150}
FULL = {"miners": 50, "hashrate": 4000.0, "shares_per_second": 3.0, "phase": 60.0, "idle": 3000,
        "slowloris": 2000, "junk": 600, "rejecters": 300}


def rss_kb() -> int:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(clients: list[StratumClient], seconds: float, rss: list[int]) -> dict[str, Any]:
    """The fleet's accepted shares and reply latencies over one window of `seconds`."""
    accepted = [c.stats.accepted for c in clients]
    rejected = [c.stats.rejected for c in clients]
    seen = [len(c.stats.reply_seconds) for c in clients]
    cpu = time.process_time()
    started = time.monotonic()
    while time.monotonic() - started < seconds:      # a measurement window, sampled once a second
        await asyncio.sleep(min(1.0, seconds))
        rss.append(rss_kb())
    elapsed = time.monotonic() - started
    cpu = time.process_time() - cpu
    latencies = [x for c, n in zip(clients, seen, strict=True) for x in c.stats.reply_seconds[n:]]
    got = sum(c.stats.accepted for c in clients) - sum(accepted)
    return {"seconds": round(elapsed, 2), "accepted": got, "accepted_per_minute": round(got * 60 / elapsed, 1),
            "rejected": sum(c.stats.rejected for c in clients) - sum(rejected),
            "latency_median_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
            "latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 2) if latencies else None,
            "replies": len(latencies),
            # CPU of this process (the pool and the honest fleet) per second of the window
            "cpu_share": round(cpu / elapsed, 3)}


async def scenario(*, miners: int, hashrate: float, shares_per_second: float, phase: float, idle: int,
                   slowloris: int, junk: int, rejecters: int, reconnect_delay: float = 0.2,
                   log: Any = print) -> dict[str, Any]:
    from pool.sim.jobs import MemoryJobSource, make_job

    difficulty = hashrate / shares_per_second / 2**32       # expected hashes per share = d x 2^32
    port = PortConfig(port=0, host="127.0.0.1", start_difficulty=difficulty, min_difficulty=difficulty,
                      vardiff=False)
    config = StratumConfig(ports=[port], limits=LimitsConfig())
    config.validate()
    jobs = MemoryJobSource()
    jobs.publish(make_job("j1"))
    server = StratumServer(config, jobs, on_share=lambda record: None, validate_account=lambda account: True,
                           node="flood-bench")
    await server.start()
    clients = [StratumClient("127.0.0.1", port.port, f"honest{i}.rig", hashrate=hashrate,
                             profile=MinerProfile(user_agent="cgminer/4.11.1"),
                             source_address=f"127.10.{i // 250}.{1 + i % 250}", rng=random.Random(i))
               for i in range(miners)]
    tasks = [asyncio.create_task(c.run()) for c in clients]
    flood: asyncio.subprocess.Process | None = None
    rss: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not all(c.stats.accepted for c in clients):
            if time.monotonic() > deadline or any(t.done() for t in tasks):
                raise RuntimeError("the honest fleet did not start mining")
            await asyncio.sleep(0.05)
        rss_before = rss_kb()
        baseline = await measure(clients, phase, rss)
        log(f"baseline: {baseline}")
        hostile = FloodConfig(port=port.port, idle=idle, slowloris=slowloris, junk=junk, rejecters=rejecters,
                              reconnect_delay=reconnect_delay)
        arguments = [f"--{k.replace('_', '-')}={v}" for k, v in json.loads(json.dumps(
            {f: getattr(hostile, f) for f in hostile.__struct_fields__})).items()]
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pool.sim.flood", *arguments, f"--duration={phase + 5}",
            stdout=asyncio.subprocess.PIPE, cwd=str(ROOT))
        assert flood.stdout is not None
        ready = await asyncio.wait_for(flood.stdout.readline(), 60)
        if not ready.startswith(b"FLOOD-READY"):
            raise RuntimeError(f"flood did not start: {ready[:200]!r}")
        at_start = server.snapshot().connections
        flooded = await measure(clients, phase, rss)
        during = server.snapshot()
        log(f"flooded: {flooded}")
        line = await asyncio.wait_for(flood.stdout.readline(), phase + 60)
        await asyncio.wait_for(flood.wait(), 30)
        hostile_stats = json.loads(line.split(b" ", 1)[1]) if line.startswith(b"FLOOD ") else {}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        hostile_stats["generator_cpu_seconds"] = round(children.ru_utime + children.ru_stime, 2)
        flood = None
    finally:
        if flood is not None and flood.returncode is None:
            flood.kill()                                    # our own child, by its handle
            await flood.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop(timeout=2.0)
    return {
        "miners": miners, "difficulty": difficulty, "phase_seconds": phase,
        "hostile": {"idle": idle, "slowloris": slowloris, "junk": junk, "rejecters": rejecters},
        "baseline": baseline, "flooded": flooded,
        "accepted_ratio": round(flooded["accepted_per_minute"] / baseline["accepted_per_minute"], 3),
        "latency_median_ratio": round(flooded["latency_median_ms"] / baseline["latency_median_ms"], 2),
        "rss_kb": {"before_flood": rss_before, "peak": max(rss), "growth": max(rss) - rss_before},
        "server": {"connections_at_flood_start": at_start, "connections_at_end": during.connections,
                   "bans": during.bans, "rejected": during.rejected()},
        "flood": hostile_stats,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI size (8 s phases, ~3,000 hostile)")
    for key, value in FULL.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None)
    args = parser.parse_args()
    params = dict(QUICK if args.quick else FULL)
    params.update({k: v for k, v in vars(args).items() if k in params and v is not None})
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(scenario(**params))
    print(f"accepted/min: {result['baseline']['accepted_per_minute']} alone, "
          f"{result['flooded']['accepted_per_minute']} flooded (x{result['accepted_ratio']})")
    print(f"reply latency median: {result['baseline']['latency_median_ms']} ms alone, "
          f"{result['flooded']['latency_median_ms']} ms flooded; p99 {result['baseline']['latency_p99_ms']} / "
          f"{result['flooded']['latency_p99_ms']} ms")
    print(f"CPU of the pool + fleet process: {result['baseline']['cpu_share']} alone, "
          f"{result['flooded']['cpu_share']} flooded (of one core); the flood generator used "
          f"{result['flood'].get('generator_cpu_seconds')} s")
    print(f"RSS: {result['rss_kb']}")
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
