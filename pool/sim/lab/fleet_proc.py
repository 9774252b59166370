"""A fleet of reconnecting simulated miners, run inside the lab's "wan" namespace (each miner binds its
own public address there), mining through the load balancer.

    python -m pool.sim.lab.fleet_proc PLAN.json EVENTS.jsonl

PLAN: {"host", "port", "hashrate", "miners": [{"username", "address"}]}. Every connect, subscribe,
accepted share, block and disconnect is appended to EVENTS as one JSON line with a wall-clock "t"
(one clock for every namespace of the machine). A line "stop" on stdin stops the fleet cleanly
(answers to submitted shares are awaited) and prints the final per-miner ClientStats as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from pool.sim.client import MinerProfile, StratumClient


async def main(plan_path: str, events_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    events = open(events_path, "a", buffering=1)  # noqa: SIM115  (line-buffered for the reader)

    def record(kind: str, fields: dict[str, Any]) -> None:
        events.write(json.dumps({"t": time.time(), "kind": kind, **fields}) + "\n")

    miners = [StratumClient(plan["host"], plan["port"], m["username"], source_address=m["address"],
                            hashrate=plan["hashrate"], reconnect=True, reconnect_delay=0.2,
                            profile=MinerProfile(user_agent="bmminer/2.0.0", version_rolling=True),
                            rng=random.Random(m["username"]), on_event=record)
              for m in plan["miners"]]
    tasks = [asyncio.create_task(miner.run()) for miner in miners]
    record("started", {"miners": len(miners)})
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "stop":
            break
    for miner in miners:
        miner.stop()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    report = {m.username: (msgspec.to_builtins(m.stats) if not isinstance(r, BaseException)
                           else {"error": repr(r), **msgspec.to_builtins(m.stats)})
              for m, r in zip(miners, results, strict=True)}
    print(json.dumps(report), flush=True)
    events.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
