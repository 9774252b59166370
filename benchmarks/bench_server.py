"""Load generator for the Stratum server: accepted shares/s, submit-to-reply latency, notify fan-out
and RSS per idle connection. Ends with one line `RESULT {json}`.

    .venv/bin/python benchmarks/bench_server.py                 # everything, 2 server workers
    .venv/bin/python benchmarks/bench_server.py --quick         # smaller and shorter
    .venv/bin/python benchmarks/bench_server.py --ledger --geo  # with the Redis ledger and geo tagging

Layout: N server worker processes share one port (SO_REUSEPORT), each with its own extranonce1
prefix, a job built from the mainnet block 881,423 vector (11 merkle branches, real mainnet
nBits so no share is a block) and a share difficulty of 1e-12 (every hash meets it: each submit is
a real, fully hashed, accepted share). Load generator processes open connections from many
127.x.y.z source addresses, subscribe, authorize and pipeline unique submits. Each process stays
under the 20,000 open-files limit.

How each figure is taken (see socket_clock.py and platform_noise.py):
- throughput: accepted replies counted by the generators over `--duration` after `--warmup`;
- latency: 100 connections, one submit in flight each (closed loop; then paced at 10 ms). The reply's
  arrival is the kernel's stamp on the client socket; the generator runs at `--nice` 19 by default
  (it stands in for miners on other machines); the figures as the generator process saw them are
  reported too;
- fan-out: idle connections on plain sockets nobody polls; each round one new job, timed from the
  first worker's publish to the last kernel arrival stamp; the median over `--fanout-rounds`;
- platform: the VM's own pauses (a busy loop per CPU) before anything runs, and hypervisor steal per
  stage: figures taken while the host steals CPU are not the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from platform_noise import StealMeter, hiccups  # noqa: E402
from socket_clock import HELLO, arrivals, measure_latency, open_idle_miners, source_address  # noqa: E402

SHARE_DIFFICULTY = 1e-12
VECTOR_INDEX = 2          # mainnet_881423_version_rolled_job_20000000
VECTORS = ROOT / "tests" / "data" / "vectors" / "mainnet_blocks.json"     # real mainnet jobs (data only)


def rss_kb(pid: int | None = None) -> int:
    for line in Path(f"/proc/{pid or os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ----------------------------------------------------------------------------------------------------
# server worker process


def bench_job(job_id: str, clean: bool) -> Any:
    from pool.sim.jobs import job_from_notify

    block = json.loads(VECTORS.read_text())["blocks"][VECTOR_INDEX]
    params = list(block["stratum"]["notify_params"])
    return job_from_notify(params, extranonce_size=8, job_id=job_id, clean=clean, created_at=time.time(),
                           height=block["block"]["height"])


async def serve(args: argparse.Namespace) -> None:
    import uvloop  # noqa: F401  (the loop is installed by main)

    from pool.config.stratum import LimitsConfig, PortConfig, StratumConfig
    from pool.sim.jobs import MemoryJobSource
    from pool.stratum.extranonce import ExtranonceAllocator
    from pool.stratum.server import StratumServer

    limits = LimitsConfig(max_connections=19_000, max_connections_per_ip=100_000, submits_per_second=1e9,
                          submit_burst=1e9, authorize_timeout=600, idle_timeout=3600, sweep_interval=5.0,
                          max_write_buffer=64 << 20)
    port = PortConfig(port=args.port, host="127.0.0.1", start_difficulty=SHARE_DIFFICULTY,
                      min_difficulty=SHARE_DIFFICULTY, vardiff=False)
    config = StratumConfig(ports=[port], extranonce2_size=4, reuse_port=True, notify_interval=3600,
                           max_jobs_per_connection=4, limits=limits)
    config.validate()
    jobs = MemoryJobSource()
    jobs.publish(bench_job("j0", True))
    accepted = [0]
    ledger = None
    on_share: Any
    if args.ledger:
        from pool.config.ledger import LedgerConfig, RedisConfig
        from pool.shares.ledger import Ledger
        ledger_config = LedgerConfig(journal_dir=os.path.join(args.journal, f"w{args.worker}"))
        if args.flush_max_shares:
            ledger_config.flush_max_shares = args.flush_max_shares
        ledger = Ledger(ledger_config,
                        RedisConfig(url=args.redis_url), node=f"bench{args.worker}")
        await ledger.start()
        on_share = ledger.add
    else:
        def on_share(record: Any) -> None:
            accepted[0] += 1
    tag: Any = None
    classify: Any = None
    if args.geo:
        from pool.geo.firmware import classify_firmware
        from pool.geo.locator import GeoLocator
        locator = GeoLocator()
        tag = lambda ip: locator.lookup(ip).as_tuple()  # noqa: E731
        classify = classify_firmware
    extra = {k: v for k, v in (("tag_connection", tag), ("classify_firmware", classify)) if v}
    server = StratumServer(config, jobs, on_share=on_share, validate_account=lambda account: True,
                           allocator=ExtranonceAllocator(prefix=args.worker, prefix_bits=8),
                           node=f"bench{args.worker}", **extra)
    await server.start()

    async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                command = json.loads(line)
                reply: dict[str, Any] = {}
                if command["cmd"] == "stats":
                    stats = server.snapshot()
                    reply = {"accepted": stats.accepted, "rejected": stats.rejected(),
                             "sessions": stats.sessions, "rss_kb": rss_kb()}
                elif command["cmd"] == "publish":
                    job = bench_job(command["job_id"], True)
                    published_at = time.time()
                    cpu = time.thread_time()             # the broadcast runs inside publish()
                    jobs.publish(job)
                    cpu = time.thread_time() - cpu       # CPU time excludes what the hypervisor stole
                    reply = {**server.timings.recent(), "published_at": published_at, "cpu_s": cpu}
                elif command["cmd"] == "profile":
                    import cProfile
                    import pstats
                    profiler = cProfile.Profile()
                    profiler.enable()
                    await asyncio.sleep(command["seconds"])
                    profiler.disable()
                    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except asyncio.CancelledError:
            return          # the worker is stopping while a controller connection is still open

    ctrl = await asyncio.start_server(control, "127.0.0.1", 0)
    print(f"READY {ctrl.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)   # until the parent says stop
    await server.stop(timeout=2)
    if ledger is not None:
        await ledger.stop()


# ----------------------------------------------------------------------------------------------------
# load generator process


class LoadConnection(asyncio.Protocol):
    def __init__(self, gen: Generator, index: int) -> None:
        self.gen = gen
        self.index = index
        self.transport: Any = None
        self.buffer = b""
        self.running = False
        self.nonce = 0
        self.head = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(HELLO % self.index)

    def data_received(self, data: bytes) -> None:
        gen = self.gen
        if self.running:
            lines = data.count(b"\n")
            gen.accepted += data.count(b"true")
            gen.replies += lines
            if lines:
                self.transport.write(self.submits(lines))
            return
        self.buffer += data
        if b"mining.notify" not in self.buffer or b'"id":2' not in self.buffer:
            return
        job_id = ntime = ""
        for line in self.buffer.splitlines():
            message = json.loads(line)
            if message.get("method") == "mining.notify":
                job_id, ntime = message["params"][0], message["params"][7]
        self.buffer = b""
        self.running = True
        self.head = (b'"method":"mining.submit","params":["bench.w%d","%s","%08x","%s","'
                     % (self.index, job_id.encode(), self.index, ntime.encode()))
        gen.ready += 1
        self.transport.write(self.submits(gen.pipeline))

    def submits(self, count: int) -> bytes:
        start = self.nonce
        self.nonce += count
        head = self.head
        return b"".join(b'{"id":%d,%s%08x"]}\n' % (n & 255, head, n) for n in range(start, start + count))


class Generator:
    def __init__(self, mode: str, pipeline: int) -> None:
        self.mode = mode
        self.pipeline = pipeline
        self.ready = 0
        self.accepted = 0
        self.replies = 0
        self.connections: list[LoadConnection] = []


async def load(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    gen = Generator(args.mode, args.pipeline)
    semaphore = asyncio.Semaphore(256)

    async def open_one(i: int) -> None:
        global_index = args.first + i
        source = source_address(global_index)
        async with semaphore:
            _, protocol = await loop.create_connection(lambda: LoadConnection(gen, global_index), "127.0.0.1",
                                                      args.port, local_addr=(source, 0))
        gen.connections.append(protocol)

    await asyncio.gather(*(open_one(i) for i in range(args.connections)))
    deadline = time.monotonic() + 60
    while gen.ready < args.connections and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print(json.dumps({"connected": gen.ready}), flush=True)
    await asyncio.sleep(args.warmup)
    accepted0, replies0 = gen.accepted, gen.replies
    started = time.perf_counter()
    await asyncio.sleep(args.duration)
    elapsed = time.perf_counter() - started
    result = {"accepted_per_s": (gen.accepted - accepted0) / elapsed,
              "replies_per_s": (gen.replies - replies0) / elapsed, "seconds": elapsed}
    print(json.dumps(result), flush=True)
    for connection in gen.connections:
        connection.transport.close()


# ----------------------------------------------------------------------------------------------------
# controller


class Worker:
    def __init__(self, index: int, port: int, args: argparse.Namespace, redis_url: str, journal: str) -> None:
        cmd = [sys.executable, __file__, "_serve", "--port", str(port), "--worker", str(index)]
        if args.ledger:
            cmd += ["--ledger", "--redis-url", redis_url, "--journal", journal,
                    "--flush-max-shares", str(args.flush_max_shares)]
        if args.geo:
            cmd += ["--geo"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"server worker {index} did not start: {line!r}")
        self.ctrl_port = int(line.split()[1])

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
        writer.write(json.dumps(command).encode() + b"\n")
        reply = json.loads(await reader.readline())
        writer.close()
        return reply

    def stop(self) -> None:
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def start_generator(mode: str, port: int, connections: int, first: int, args: argparse.Namespace,
                    pipeline: int = 1, pace: float = 0.0) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "_load", "--mode", mode, "--port", str(port), "--connections", str(connections),
           "--first", str(first), "--pipeline", str(pipeline), "--duration", str(args.duration),
           "--warmup", str(args.warmup), "--pace", str(pace), "--nice", str(args.nice)]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def read_json(proc: subprocess.Popen[str]) -> dict[str, Any]:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"generator exited with {proc.wait()}")
    return json.loads(line)


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def measure_throughput(args: argparse.Namespace, port: int, workers: list[Worker],
                             result: dict[str, Any]) -> None:
    """Pipelined submits from `--connections` connections, `--pipeline` shares in flight each."""
    per_gen = args.connections // args.generators
    gens = [start_generator("throughput", port, per_gen, g * per_gen, args, args.pipeline)
            for g in range(args.generators)]
    connected = [read_json(g)["connected"] for g in gens]
    before = [await w.ask({"cmd": "stats"}) for w in workers]
    if args.profile:
        await asyncio.sleep(args.warmup)
        await workers[0].ask({"cmd": "profile", "seconds": 3})
    outcome = [read_json(g) for g in gens]
    after = [await w.ask({"cmd": "stats"}) for w in workers]
    for g in gens:
        g.wait()
    result["throughput"] = {
        "connections": sum(connected), "pipeline": args.pipeline, "generators": args.generators,
        "accepted_shares_per_s": round(sum(o["accepted_per_s"] for o in outcome)),
        "replies_per_s": round(sum(o["replies_per_s"] for o in outcome)),
        "server_accepted": sum(a["accepted"] for a in after) - sum(b["accepted"] for b in before),
        "rejected": [a["rejected"] for a in after],
        "per_worker_accepted": [a["accepted"] for a in after],
    }
    print("throughput", json.dumps(result["throughput"]), flush=True)


async def measure_fanout(args: argparse.Namespace, port: int, workers: list[Worker],
                         result: dict[str, Any]) -> None:
    """Idle connections (RSS per connection), then one new job to all of them. Arrival at each client
    socket is the kernel's stamp; the generators do not read until the fan-out is over."""
    rss_before = [(await w.ask({"cmd": "stats"}))["rss_kb"] for w in workers]
    per_fan = args.fanout_connections // args.fanout_generators
    fans = [start_generator("fanout", port, per_fan, 200_000 + g * per_fan, args)
            for g in range(args.fanout_generators)]
    fan_connected = sum(read_json(f)["connected"] for f in fans)
    await asyncio.sleep(2.0)
    idle = [await w.ask({"cmd": "stats"}) for w in workers]
    sessions = [s["sessions"] for s in idle]
    rss_per = [(s["rss_kb"] - b) * 1024 / max(1, s["sessions"]) for s, b in zip(idle, rss_before, strict=True)]
    rounds = []
    for round_no in range(args.fanout_rounds):
        steal = StealMeter()
        timings = await asyncio.gather(*(w.ask({"cmd": "publish", "job_id": f"fan{round_no}"}) for w in workers))
        published_at = min(t["published_at"] for t in timings)   # the first worker to have the new job
        await asyncio.sleep(1.0)
        for f in fans:
            f.stdin.write("report\n")
            f.stdin.flush()
        times = sorted(t for f in fans for t in read_json(f)["times"])
        rounds.append({"notified": len(times),
                       "all_notified_ms": round((times[-1] - published_at) * 1e3, 1) if times else None,
                       "median_notified_ms": round((statistics.median(times) - published_at) * 1e3, 1)
                       if times else None,
                       "server_loop_ms": [round(t["notify_fanout_last_s"] * 1e3, 1) for t in timings],
                       "server_loop_cpu_ms": [round(t["cpu_s"] * 1e3, 1) for t in timings],
                       "steal_percent": steal.percent()})
        print("fanout round", json.dumps(rounds[-1]), flush=True)
    for f in fans:
        f.stdin.write("exit\n")
        f.stdin.flush()
        f.wait()
    complete = [r["all_notified_ms"] for r in rounds if r["notified"] == fan_connected]
    result["fanout"] = {
        "connections": fan_connected, "sessions_per_worker": sessions, "rounds": len(rounds),
        "rounds_reaching_all": len(complete),
        "all_notified_ms_median": statistics.median(complete) if complete else None,
        "all_notified_ms_range": [min(complete), max(complete)] if complete else None,
        "median_notified_ms_median": statistics.median(r["median_notified_ms"] for r in rounds if r["notified"]),
        "per_round": rounds,
    }
    result["idle_rss_bytes_per_connection"] = [round(x) for x in rss_per]
    print("fanout", json.dumps(result["fanout"]), flush=True)


async def controller(args: argparse.Namespace) -> dict[str, Any]:
    redis = None
    journal = tempfile.mkdtemp(prefix="bench-journal-")
    redis_url = ""
    if args.ledger:
        from pool.sim.redis_server import RedisProcess
        redis = RedisProcess()
        redis.start()
        redis_url = redis.url
    port = free_port()
    workers = [Worker(i + 1, port, args, redis_url, journal) for i in range(args.workers)]
    result: dict[str, Any] = {"workers": args.workers, "ledger": args.ledger, "geo": args.geo,
                              "share_difficulty": SHARE_DIFFICULTY, "cpus": os.cpu_count()}
    try:
        result["platform"] = hiccups(3.0)     # before anything of ours runs: the VM's own pauses
        print("platform", json.dumps(result["platform"]), flush=True)
        if "fanout" in args.stages:
            # first, while the workers are fresh: RSS per idle connection is not blurred by memory
            # the other stages used and freed
            await measure_fanout(args, port, workers, result)
            await asyncio.sleep(1.0)
        if "throughput" in args.stages:
            await measure_throughput(args, port, workers, result)
        # 2. latency: 100 connections, one share in flight each; then the same with each miner
        # sending its next share 10 ms after its reply (~10k shares/s offered, generator not saturated)
        for name, first, pace in (("latency", 100_000, 0.0), ("latency_paced", 150_000, 0.010)):
            if "latency" not in args.stages:
                break
            steal = StealMeter()
            gen = start_generator("latency", port, args.latency_connections, first, args, pace=pace)
            outcome = read_json(gen)
            gen.wait()
            result[name] = {"connections": args.latency_connections, "interval_ms": pace * 1e3,
                            "shares_per_s": round(outcome["accepted_per_s"]), "samples": outcome["samples"],
                            "unstamped": outcome["unstamped"], "at_client_socket": outcome["at_socket"],
                            "at_generator_process": outcome["at_process"], "generator_nice": args.nice,
                            "steal_percent": steal.percent()}
            print(name, json.dumps(result[name]), flush=True)
    finally:
        for w in workers:
            w.stop()
        if redis is not None:
            redis.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", nargs="?", default="bench", choices=["bench", "_serve", "_load"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--generators", type=int, default=1)
    parser.add_argument("--pipeline", type=int, default=32)
    parser.add_argument("--latency-connections", type=int, default=100)
    parser.add_argument("--fanout-connections", type=int, default=30_000)
    parser.add_argument("--fanout-generators", type=int, default=2)
    parser.add_argument("--fanout-rounds", type=int, default=7, help="new jobs sent; median reported")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--ledger", action="store_true", help="feed accepted shares to the Redis ledger")
    parser.add_argument("--geo", action="store_true", help="tag connections with the geo locator")
    parser.add_argument("--flush-max-shares", type=int, default=0, help="ledger.flush_max_shares (0: default)")
    parser.add_argument("--profile", action="store_true", help="cProfile worker 1 for 3 s (stderr)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stages", default="throughput,latency,fanout",
                        help="comma-separated subset of throughput,latency,fanout")
    # internal
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--worker", type=int, default=1)
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--journal", default="")
    parser.add_argument("--mode", default="throughput")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--pace", type=float, default=0.0)
    parser.add_argument("--nice", type=int, default=19,
                        help="niceness of the latency generator: it stands in for miners on other machines, "
                             "so by default it does not take CPU the server wants (0: compete as equals)")
    args = parser.parse_args()
    import uvloop
    if args.role == "_serve":
        uvloop.run(serve(args))
        return
    if args.role == "_load" and args.mode == "fanout":
        idle = open_idle_miners(args.port, args.connections, args.first)
        print(json.dumps({"connected": len(idle)}), flush=True)
        while sys.stdin.readline().strip() == "report":      # parent: once the job is out
            times = sorted(arrivals(idle, b'"fan'))
            print(json.dumps({"notified": len(times), "times": times}), flush=True)
        return
    if args.role == "_load" and args.mode == "latency":
        os.nice(args.nice)
        outcome = measure_latency(args.port, args.connections, args.first, args.warmup, args.duration, args.pace)
        print(json.dumps(outcome), flush=True)
        return
    if args.role == "_load":
        uvloop.run(load(args))
        return
    if args.quick:
        args.duration, args.warmup, args.fanout_connections = 3.0, 1.0, 4000
    result = uvloop.run(controller(args))
    targets = {"accepted_shares_per_s": 100_000, "p99_ms": 3.0, "fanout_30k_ms": 150, "rss_per_idle_conn": 8192}
    result["targets"] = targets
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
