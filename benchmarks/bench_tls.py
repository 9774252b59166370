"""TLS against plain-text Stratum on the same run: accepted shares/s and handshakes/s through each.

    .venv/bin/python benchmarks/bench_tls.py               # 3 rounds x 4 s per figure
    .venv/bin/python benchmarks/bench_tls.py --quick       # 1 round x 1.5 s

One server process (uvloop) listens on a plain port and a TLS port (TLS 1.3, a P-256 certificate
made with openssl) with the same settings: share difficulty 1e-12 (every hash meets it, so each
submit is a real, fully hashed, accepted share) on the mainnet 881,423 job. The generator process
opens --connections connections per port from 127.x source addresses; each keeps --window submits
in flight. Handshakes/s: --handshake-concurrency clients in a loop of connect, (TLS handshake),
mining.subscribe, its reply, close. Rounds alternate plain and TLS so drift hits both; the medians
and the TLS/plain ratio are printed, then one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import ssl
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

from bench_server import SHARE_DIFFICULTY, bench_job, free_port  # noqa: E402


async def serve(args: argparse.Namespace) -> None:
    from pool.config.stratum import LimitsConfig, PortConfig, StratumConfig
    from pool.sim.jobs import MemoryJobSource
    from pool.stratum.server import StratumServer

    limits = LimitsConfig(max_connections=19_000, max_connections_per_ip=100_000, submits_per_second=1e9,
                          submit_burst=1e9, authorize_timeout=600, idle_timeout=3600, sweep_interval=5.0)
    common = {"host": "127.0.0.1", "start_difficulty": SHARE_DIFFICULTY, "min_difficulty": SHARE_DIFFICULTY,
              "vardiff": False}
    ports = [PortConfig(port=args.plain_port, **common),
             PortConfig(port=args.tls_port, tls=True, tls_cert_file=args.cert, tls_key_file=args.key, **common)]
    config = StratumConfig(ports=ports, extranonce2_size=4, notify_interval=3600, max_jobs_per_connection=4,
                           limits=limits)
    config.validate()
    jobs = MemoryJobSource()
    jobs.publish(bench_job("j0", True))
    server = StratumServer(config, jobs, on_share=lambda record: None, validate_account=lambda a: True, node="b")
    await server.start()
    print("READY", flush=True)
    await asyncio.Event().wait()


class Miner:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        self.reader, self.writer, self.index = reader, writer, index
        self.accepted = 0
        self.counting = False

    async def handshake(self) -> tuple[str, int]:
        self.writer.write(b'{"id":1,"method":"mining.subscribe","params":["bench/1"]}\n'
                          b'{"id":2,"method":"mining.authorize","params":["bench.w%d","x"]}\n' % self.index)
        job = ""
        ntime = 0
        while not job:
            message = json.loads(await self.reader.readline())
            if message.get("method") == "mining.notify":
                job, ntime = message["params"][0], int(message["params"][7], 16)
        return job, ntime

    async def run(self, window: int, stop: asyncio.Event) -> None:
        job, ntime = await self.handshake()
        nonce = 0

        def submit() -> None:
            nonlocal nonce
            nonce += 1
            self.writer.write(b'{"id":9,"method":"mining.submit","params":["bench.w%d","%s","%08x","%08x","%08x"]}\n'
                              % (self.index, job.encode(), nonce >> 32, ntime, nonce & 0xFFFFFFFF))

        for _ in range(window):
            submit()
        while not stop.is_set():
            line = await self.reader.readline()
            if not line:
                return
            if b'"result":true' in line:
                if self.counting:
                    self.accepted += 1
                submit()
        self.writer.close()


async def connect(port: int, context: ssl.SSLContext | None, index: int) -> tuple[Any, Any]:
    source = f"127.{1 + index // 60000 % 250}.{index // 250 % 240 + 1}.{index % 250 + 1}"
    return await asyncio.open_connection("127.0.0.1", port, ssl=context, local_addr=(source, 0),
                                         server_hostname="127.0.0.1" if context else None, limit=1 << 20)


async def shares_per_second(port: int, context: ssl.SSLContext | None, args: argparse.Namespace, base: int) -> float:
    stop = asyncio.Event()
    miners = [Miner(*await connect(port, context, base + i), base + i) for i in range(args.connections)]
    tasks = [asyncio.create_task(m.run(args.window, stop)) for m in miners]
    await asyncio.sleep(args.warmup)
    for m in miners:
        m.counting = True
    started = time.perf_counter()
    await asyncio.sleep(args.duration)
    for m in miners:
        m.counting = False
    elapsed = time.perf_counter() - started
    stop.set()
    for m in miners:
        m.writer.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    return sum(m.accepted for m in miners) / elapsed


async def handshakes_per_second(port: int, context: ssl.SSLContext | None, args: argparse.Namespace,
                                base: int) -> float:
    done = 0
    deadline = time.perf_counter() + args.duration

    async def loop(lane: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < deadline:
            reader, writer = await connect(port, context, base + lane * 1000 + i % 1000)
            writer.write(b'{"id":1,"method":"mining.subscribe","params":["bench/1"]}\n')
            await reader.readline()
            writer.close()
            done += 1
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(lane) for lane in range(args.handshake_concurrency)))
    return done / (time.perf_counter() - started)


async def controller(args: argparse.Namespace) -> dict[str, Any]:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("bench_tls: the openssl command is needed to make a certificate")
    folder = Path(tempfile.mkdtemp(prefix="gs-bench-tls-"))
    cert, key = folder / "c.pem", folder / "k.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=bench",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    plain_port, tls_port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--plain-port", str(plain_port),
                               "--tls-port", str(tls_port), "--cert", str(cert), "--key", str(key)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "READY":
            raise SystemExit("bench_tls: the server did not start")
        context = ssl.create_default_context(cafile=str(cert))
        figures: dict[str, list[float]] = {"plain_shares": [], "tls_shares": [], "plain_handshakes": [],
                                           "tls_handshakes": []}
        base = 0
        for round_ in range(args.rounds):
            for mode, port, ctx in (("plain", plain_port, None), ("tls", tls_port, context)):
                base += 20_000
                figures[f"{mode}_shares"].append(await shares_per_second(port, ctx, args, base))
                base += 20_000
                figures[f"{mode}_handshakes"].append(await handshakes_per_second(port, ctx, args, base))
                print(f"round {round_ + 1} {mode:5}: {figures[f'{mode}_shares'][-1]:9,.0f} shares/s  "
                      f"{figures[f'{mode}_handshakes'][-1]:7,.0f} handshakes/s", flush=True)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in figures.items()}
    result = {
        **{f"{name}_per_s": round(value) for name, value in medians.items()},
        "tls_vs_plain_shares": round(medians["tls_shares"] / medians["plain_shares"], 3),
        "tls_vs_plain_handshakes": round(medians["tls_handshakes"] / medians["plain_handshakes"], 3),
        "connections": args.connections, "window": args.window, "rounds": args.rounds, "duration_s": args.duration,
        "handshake_concurrency": args.handshake_concurrency, "tls": ssl.OPENSSL_VERSION,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }
    print(f"median shares/s      plain {medians['plain_shares']:9,.0f}   TLS {medians['tls_shares']:9,.0f}   "
          f"TLS/plain {result['tls_vs_plain_shares']}")
    print(f"median handshakes/s  plain {medians['plain_handshakes']:9,.0f}   TLS {medians['tls_handshakes']:9,.0f}   "
          f"TLS/plain {result['tls_vs_plain_handshakes']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plain-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--tls-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cert", default="", help=argparse.SUPPRESS)
    parser.add_argument("--key", default="", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1 round of 1.5 s per figure")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--window", type=int, default=8, help="submits in flight per connection")
    parser.add_argument("--handshake-concurrency", type=int, default=8)
    args = parser.parse_args()
    import uvloop

    if args.serve:
        uvloop.run(serve(args))
        return
    if args.quick:
        args.rounds, args.duration = 1, 1.5
    result = uvloop.run(controller(args))
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
