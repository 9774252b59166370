"""Failover times of the pool spread over three hosts (pool/sim/lab/poollab.py: network-namespace hosts,
`geostratum run --workers 2` on each, a Redis Cluster of three masters with replicas across the hosts,
HAProxy from the distribution in front with PROXY v2, reconnecting miners on real public addresses).

Each run builds a fresh lab, lets the fleet mine, SIGKILLs every process of host h1 (or `--kill-host`:
its pool and its two Redis nodes), then SIGKILLs the Redis master on the next host (h2), and measures
from each kill:

- disconnect: a miner of h1 sees its connection closed (HAProxy closes the client side at once);
- tcp reconnect: its new TCP connection to HAProxy is open (after the simulated firmware's back-off);
- reconnect: its new subscribe answered by a surviving host (through HAProxy): the surviving host
             waits for the dead host's heartbeat to be resume_holder_timeout old before it gives
             the old extranonce1 back;
- resume:    that miner's first accepted share on the new host, with its old extranonce1;
- balancer:  HAProxy marks h1 DOWN (its health checks: inter 500 ms, fall 2);
- promotion: the dead master's replica reports role master (h1's master for the host kill, h2's for
             the master kill); cluster ok: every live node says cluster_state:ok again.

Baseline from the same run: a cold start (connect, subscribe, authorize, first accepted share) of the
same miners through the same balancer, before anything failed.

    sudo .venv/bin/python benchmarks/bench_failover.py --runs 5 [--heartbeat 1 --holder-timeout 3]

Prints one line per run and a final `RESULT {json}` with the medians over runs (each run's figure is
the median over h1's miners).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pool.sim.lab.poollab import (  # noqa: E402
    MASTER_PORT,
    REPLICA_PORT,
    PoolLab,
    failovers,
    last_extranonce,
    unavailable_reason,
    wait_until,
)

REGIONS = {"DE": 3, "US/Texas": 3, "JP": 3, "BR": 3, "KZ": 3, "CA": 3}


def first_time(predicate, timeout: float, what: str, interval: float = 0.02) -> float:  # type: ignore[no-untyped-def]
    """Wall-clock time at which `predicate` first held (polled every `interval` s)."""
    wait_until(predicate, timeout, what, interval)
    return time.time()


def one_run(workdir: Path, heartbeat: float, holder_timeout: float, dead: str = "h1") -> dict[str, float]:
    lab = PoolLab(workdir, REGIONS, stratum={"resume_heartbeat_seconds": heartbeat,
                                             "resume_holder_timeout": holder_timeout})
    # The replica of host i's master lives on host i + 1 (poollab): the host kill promotes `nxt`'s
    # replica; then `nxt`'s own master dies and the replica on `after` takes over.
    hosts = lab.hosts
    nxt, after = hosts[(hosts.index(dead) + 1) % 3], hosts[(hosts.index(dead) + 2) % 3]
    lab.start()
    try:
        fleet = lab.start_fleet()
        names = {m["username"] for m in lab.miners}
        wait_until(lambda: {e["worker"] for e in fleet.poll() if e["kind"] == "accepted"} == names, 60,
                   "every miner mining")
        events = fleet.poll()
        started = next(e["t"] for e in events if e["kind"] == "started")
        cold = [min(e["t"] for e in events if e.get("worker") == n and e["kind"] == "accepted") - started
                for n in names]
        placement = wait_until(lambda: lab.placed(names), 20, "every miner placed")
        victims = sorted(w for w, h in placement.items() if h == dead)
        extranonce1 = last_extranonce(fleet.poll())

        killed_at = time.time()
        lab.net.kill_namespace(dead)
        balancer_at = first_time(lambda: lab.balancer_states().get(dead) != "UP", 30, "HAProxy marks the host down")
        promoted_at = first_time(lambda: lab.roles().get((nxt, REPLICA_PORT)) == "master", 30,
                                 "the dead host's replica promoted")
        moved = wait_until(lambda: failovers(fleet.poll(), victims, killed_at, extranonce1), 60, "h1's miners moved")
        assert all(f.resumed for f in moved.values()), moved

        master_killed_at = time.time()
        lab.redis_nodes[(nxt, MASTER_PORT)].kill()
        master_promoted_at = first_time(lambda: lab.roles().get((after, REPLICA_PORT)) == "master", 30,
                                        "h2's replica promoted")
        cluster_ok_at = first_time(lab.cluster_ok, 30, "cluster ok")
        fleet.stop()
        return {
            "miners_moved": len(moved),
            "cold_start_s": statistics.median(cold),
            "disconnect_s": statistics.median(f.disconnected_at - killed_at for f in moved.values()),
            "tcp_reconnect_s": statistics.median(f.connected_at - killed_at for f in moved.values()),
            "reconnect_s": statistics.median(f.subscribed_at - killed_at for f in moved.values()),
            "resume_first_share_s": statistics.median(f.first_share_at - killed_at for f in moved.values()),
            "balancer_down_s": balancer_at - killed_at,
            "host_kill_promotion_s": promoted_at - killed_at,
            "master_kill_promotion_s": master_promoted_at - master_killed_at,
            "master_kill_cluster_ok_s": cluster_ok_at - master_killed_at,
        }
    finally:
        lab.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--heartbeat", type=float, default=1.0, help="[stratum] resume_heartbeat_seconds")
    parser.add_argument("--holder-timeout", type=float, default=3.0, help="[stratum] resume_holder_timeout")
    parser.add_argument("--kill-host", choices=["h1", "h2", "h3"], default="h1",
                        help="the host that dies (h1's Redis master holds the resume directory's slot)")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="gs-failover-") as workdir:
            figures = one_run(Path(workdir), args.heartbeat, args.holder_timeout, args.kill_host)
        runs.append(figures)
        print(f"run {i + 1}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in figures.items()), flush=True)
    medians = {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}
    medians["resume_vs_cold_start"] = round(medians["resume_first_share_s"] / medians["cold_start_s"], 2)
    result = {"runs": len(runs), "medians": medians,
              "ranges": {k: [round(min(r[k] for r in runs), 3), round(max(r[k] for r in runs), 3)] for k in runs[0]},
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "config": {"resume_heartbeat_seconds": args.heartbeat, "resume_holder_timeout": args.holder_timeout,
                         "cluster_node_timeout_ms": 1000, "killed_host": args.kill_host,
                         "haproxy_check": "inter 500ms fall 2", "miners": sum(REGIONS.values())}}
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
