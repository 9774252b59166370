"""Hostile Stratum clients for flood tests: idle sockets, slowloris, junk lines and reject floods.

Each kind keeps its number of connections open from many 127.x.y.z source addresses, reconnecting
whenever the pool closes one (as an attacker would), so the pool faces the same pressure for the whole
run. Thousands of connections fit in one process: plain asyncio Protocols, no per-connection task.

    python -m pool.sim.flood --port 3333 --idle 2000 --slowloris 1000 --junk 300 --rejecters 150 \\
        --duration 30        # prints one line `FLOOD {json}` with what happened to each kind
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from pool.aio import cancel_and_wait

KINDS = ("idle", "slowloris", "junk", "rejecters")


class FloodConfig(msgspec.Struct, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 3333
    idle: int = 0                    # connect and send nothing
    slowloris: int = 0               # one byte of a never-ending line every slowloris_interval
    junk: int = 0                    # lines that are not JSON-RPC, junk_per_second each
    rejecters: int = 0               # authorize, then unknown-job submits at rejects_per_second each
    slowloris_interval: float = 1.0
    junk_per_second: float = 20.0
    rejects_per_second: float = 45.0   # 150 rejecters x 45/s: the 6,700/s storm of issue 15
    per_address: int = 100            # connections per source address
    first_address: str = "127.200.0.1"  # source addresses count up from here
    reconnect_delay: float = 0.05
    account: str = "flood"
    seed: int = 15


class KindStats(msgspec.Struct, kw_only=True):
    connects: int = 0                # connections made (each reconnect counts)
    refused: int = 0                 # connect attempts that failed
    closed_by_pool: int = 0          # connections the pool ended
    sent_lines: int = 0
    open: int = 0


def source_addresses(first: str, count: int) -> list[str]:
    a, b, c, d = (int(x) for x in first.split("."))
    base = (b << 16) | (c << 8) | d
    out = []
    for i in range(count):
        value = base + i
        out.append(f"{a}.{(value >> 16) & 255}.{(value >> 8) & 255}.{max(1, value & 255)}")
    return out


class _Hostile(asyncio.Protocol):
    def __init__(self, flood: Flood, kind: str) -> None:
        self.flood, self.kind = flood, kind
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.seq = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        stats = self.flood.stats[self.kind]
        stats.connects += 1
        stats.open += 1
        self.start()

    def start(self) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        stats = self.flood.stats[self.kind]
        stats.open -= 1
        if self.timer is not None:
            self.timer.cancel()
        if not self.flood.stopping:
            stats.closed_by_pool += 1
            self.flood.reconnect(self.kind)

    def write(self, data: bytes, lines: int = 1) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.flood.stats[self.kind].sent_lines += lines

    def every(self, seconds: float, action: Callable[[], None]) -> None:
        def tick() -> None:
            if self.transport is None or self.transport.is_closing():
                return
            action()
            self.timer = loop.call_later(seconds, tick)
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(seconds * self.flood.rng.random(), tick)


class _Idle(_Hostile):
    pass


class _Slowloris(_Hostile):
    LINE = b'{"id":1,"method":"mining.subscribe","params":["slow' + b"w" * 10_000

    def start(self) -> None:
        self.every(self.flood.config.slowloris_interval, self.drip)

    def drip(self) -> None:
        self.write(self.LINE[self.seq % len(self.LINE):][:1], lines=0)
        self.seq += 1


class _Junk(_Hostile):
    def start(self) -> None:
        self.every(1.0 / self.flood.config.junk_per_second, self.spit)

    def spit(self) -> None:
        rng = self.flood.rng
        self.write(rng.choice((b"GET / HTTP/1.1\r\n", b"\x00\xff\x13" * 7 + b"\n", b'{"id":1,"method":\n',
                               b"[" * 300 + b"\n", b'{"id":[],"method":"mining.submit","params":1}\n')))


class _Rejecter(_Hostile):
    """Authorizes like a miner, then floods submits against a job that does not exist."""

    def start(self) -> None:
        worker = f"{self.flood.config.account}.r{id(self) & 0xFFFF}"
        self.worker = worker.encode()
        self.write(b'{"id":1,"method":"mining.subscribe","params":["flood/1"]}\n'
                   b'{"id":2,"method":"mining.authorize","params":["%s","x"]}\n' % self.worker, lines=2)
        self.every(1.0 / self.flood.config.rejects_per_second, self.reject)

    def reject(self) -> None:
        self.seq += 1
        self.write(b'{"id":%d,"method":"mining.submit","params":["%s","nojob","00000000","5f5e1000","%08x"]}\n'
                   % (self.seq + 2, self.worker, self.seq))


_PROTOCOLS: dict[str, type[_Hostile]] = {"idle": _Idle, "slowloris": _Slowloris, "junk": _Junk,
                                         "rejecters": _Rejecter}


class Flood:
    """Keeps `config`'s hostile connections open until `stop()`."""

    def __init__(self, config: FloodConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.stats = {kind: KindStats() for kind in KINDS}
        self.stopping = False
        # Each kind has its own block of source addresses, `per_address` connections on each, so
        # a ban earned by one kind never hits another.
        self._addresses: dict[str, list[str]] = {}
        first = config.first_address
        for kind in KINDS:
            needed = max(1, -(-getattr(config, kind) // config.per_address))
            block = source_addresses(first, needed + 1)
            self._addresses[kind], first = block[:needed], block[needed]
        self._next: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._transports: list[asyncio.BaseTransport] = []
        self._pending: set[asyncio.Task[None]] = set()

    def _address(self, kind: str) -> str:
        addresses = self._addresses[kind]
        self._next[kind] += 1
        return addresses[self._next[kind] % len(addresses)]

    async def _open(self, kind: str, delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self.stopping:
            return
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(
                lambda: _PROTOCOLS[kind](self, kind), self.config.host, self.config.port,
                local_addr=(self._address(kind), 0))
            self._transports.append(transport)
            if len(self._transports) > 4 * sum(getattr(self.config, k) for k in KINDS):
                self._transports = [t for t in self._transports if not t.is_closing()]
        except OSError:
            self.stats[kind].refused += 1
            if not self.stopping:
                self.reconnect(kind)

    def reconnect(self, kind: str) -> None:
        task = asyncio.ensure_future(self._open(kind, self.config.reconnect_delay))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def start(self, batch: int = 200) -> None:
        """Open every connection (in batches, so the pool's accept backlog is not the test)."""
        for kind in KINDS:
            for first in range(0, getattr(self.config, kind), batch):
                count = min(batch, getattr(self.config, kind) - first)
                await asyncio.gather(*(self._open(kind) for _ in range(count)))

    async def stop(self) -> None:
        self.stopping = True
        await cancel_and_wait(*self._pending, absorb_errors=True)
        for transport in self._transports:
            transport.abort()
        await asyncio.sleep(0)

    def snapshot(self) -> dict[str, Any]:
        return {kind: msgspec.to_builtins(stats) for kind, stats in self.stats.items()}


async def run(config: FloodConfig, duration: float) -> dict[str, Any]:
    flood = Flood(config)
    await flood.start()
    print("FLOOD-READY " + json.dumps(flood.snapshot()), flush=True)
    try:
        await asyncio.sleep(duration)
    finally:
        result = flood.snapshot()
        await flood.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    fields = FloodConfig()
    for name in FloodConfig.__struct_fields__:
        default = getattr(fields, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    parser.add_argument("--duration", type=float, default=30.0)
    args = vars(parser.parse_args(argv))
    duration = args.pop("duration")
    result = asyncio.run(run(FloodConfig(**args), duration))
    print("FLOOD " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
