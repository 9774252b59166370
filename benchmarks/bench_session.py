"""CPU cost of the sans-IO session's two hot paths, without sockets: mining.submit (pipelined unique
submits through `Session.receive_data`, each judged for real with one native hash at difficulty 1e-12,
so every one is accepted) and the fan-out's per-session step (`Session.push_job` over N working
sessions). Ends with one line `RESULT {json}`.

    .venv/bin/python benchmarks/bench_session.py                       # this checkout
    .venv/bin/python benchmarks/bench_session.py --against /tmp/before # ...and another one, alternating

CPU time of this process (time.process_time), best of `--repeats`: the machines are shared, and the
socket benchmark (bench_server.py) moves by more than the session's own cost from one run to the
next. With `--against DIR` (a checkout of another revision, e.g. `git archive REV | tar -x -C DIR`,
with the built native module copied in) each round runs both trees in fresh processes, alternating,
and the result gives each tree's median over the rounds and the ratio this/against.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def measure(submits: int, sessions: int, repeats: int) -> dict[str, float]:
    """Runs inside the tree under test (its `pool` first on sys.path)."""
    from pool.config.stratum import LimitsConfig, PortConfig, StratumConfig
    from pool.sim.jobs import MemoryJobSource, make_job
    from pool.stratum import messages as m
    from pool.stratum.extranonce import ExtranonceAllocator
    from pool.stratum.session import Session

    now = 1_760_000_100.0
    limits = LimitsConfig(submits_per_second=1e9, submit_burst=1e9)
    port = PortConfig(port=0, start_difficulty=1e-12, min_difficulty=1e-12, vardiff=False)
    config = StratumConfig(ports=[port], extranonce2_size=8, limits=limits)
    jobs = MemoryJobSource()
    job = make_job("1", height=900_000)
    jobs.publish(job)
    allocator = ExtranonceAllocator()

    def working_session() -> Session:
        session = Session(config=config, port=port, jobs=jobs, allocator=allocator,
                          validate_account=lambda account: True, classify_firmware=lambda agent: "bench", now=now)
        session.receive_data(b'{"id":1,"method":"mining.subscribe","params":["bench/1"]}\n'
                             b'{"id":2,"method":"mining.authorize","params":["a.w","x"]}\n', now)
        session.out.clear()
        session.events.clear()
        return session

    def submit_rate() -> float:
        session = working_session()
        wire = next(iter(session.sent_jobs)).encode()
        lines = [b'{"id":%d,"method":"mining.submit","params":["a.w","%s","%016x","%08x","%08x"]}'
                 % (i, wire, i, job.ntime, i) for i in range(submits)]
        reads = [b"\n".join(lines[i:i + 32]) + b"\n" for i in range(0, submits, 32)]   # 32 per read
        started = time.process_time()
        for data in reads:
            session.receive_data(data, now)
            session.out.clear()
            session.events.clear()
        spent = time.process_time() - started
        if session.counters.accepted != submits:
            raise RuntimeError(f"{session.counters.accepted} of {submits} accepted: {session.counters.rejected}")
        return submits / spent

    def push_ms() -> float:
        everyone = [working_session() for _ in range(sessions)]
        rounds = []
        for r in range(5):
            wire = f"b{r}"
            notify = m.job_wire(job).notify(wire, job.ntime, False)
            shared: dict[float, Any] = {}
            started = time.process_time()
            for session in everyone:
                session.push_job(job, wire, job.ntime, False, notify, now, shared)
            rounds.append((time.process_time() - started) * 1000)
        return min(rounds)

    return {"submit_shares_per_cpu_s": max(submit_rate() for _ in range(repeats)),
            "push_job_ms": min(push_ms() for _ in range(repeats)), "sessions": sessions}


def run_tree(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "_measure", "--tree", str(tree),
               "--submits", str(args.submits), "--sessions", str(args.sessions), "--repeats", str(args.repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=tree)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "_measure"], help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--against", type=Path, help="another checkout to compare with, alternating")
    parser.add_argument("--rounds", type=int, default=5, help="alternations with --against (default 5)")
    parser.add_argument("--submits", type=int, default=20_000, help="submits per measurement")
    parser.add_argument("--sessions", type=int, default=4_000, help="working sessions in the push_job pass")
    parser.add_argument("--repeats", type=int, default=5, help="measurements per process (the best is kept)")
    args = parser.parse_args()
    if args.mode == "_measure":
        sys.path.insert(0, str(args.tree))
        print(json.dumps(measure(args.submits, args.sessions, args.repeats)))
        return
    if args.against is None:
        result: dict[str, Any] = {"this": run_tree(ROOT, args)}
    else:
        runs: dict[str, list[dict[str, float]]] = {"this": [], "against": []}
        for round_no in range(args.rounds):
            for name, tree in (("against", args.against), ("this", ROOT)):
                runs[name].append(run_tree(tree, args))
                print(f"round {round_no + 1} {name}: {json.dumps(runs[name][-1])}", flush=True)
        keys = ("submit_shares_per_cpu_s", "push_job_ms")
        result = {name: {key: statistics.median(run[key] for run in rows) for key in keys}
                  for name, rows in runs.items()}
        result["ratio_this_vs_against"] = {key: result["this"][key] / result["against"][key] for key in keys}
        result["against_tree"] = str(args.against)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
