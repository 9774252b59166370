"""A Stratum V1 mining client that really hashes (with pool.native) at a low share difficulty.

It behaves like firmware: optional PROXY header (as a load balancer would add), mining.configure
with version rolling, subscribe with a user agent, authorize, suggest_difficulty; it applies a new
difficulty at the next notify (cgminer semantics), rolls version bits inside the granted mask, and
counts what the pool answered. With `reconnect`, a lost connection is opened again after a short
back-off and the subscribe carries the last session id, as cgminer and bmminer do, so the pool can
give the same extranonce1 back (session resume).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from typing import Any

import msgspec

from pool import native
from pool.aio import cancel_and_wait
from pool.native.work import difficulty_to_target, target_bytes

# Nonces hashed between yields to the event loop.
HASH_CHUNK = 512


class ClientStats(msgspec.Struct, kw_only=True):
    submitted: int = 0
    accepted: int = 0
    rejected: int = 0
    blocks: int = 0
    reject_reasons: dict[str, int] = msgspec.field(default_factory=dict)
    hashes: int = 0
    notifies: int = 0
    difficulty: float = 0.0
    connections: int = 0                 # connections opened (1 + reconnects)
    resumed: int = 0                     # reconnects that got the same extranonce1 back
    unanswered: int = 0                  # submits whose connection closed before the answer
    error: str = ""                      # what ended the miner's run early ("" when it ran its course)
    # Seconds from writing each submit to reading its reply (the newest MAX_LATENCIES; the pool's reply
    # latency as this miner sees it, including its own event loop's delay).
    reply_seconds: list[float] = msgspec.field(default_factory=list)


MAX_LATENCIES = 100_000


class MinerProfile(msgspec.Struct, frozen=True, kw_only=True):
    user_agent: str = "cpuminer/2.5.1"
    version_rolling: bool = False
    suggest_difficulty: float | None = None
    extranonce_subscribe: bool = False


class _Work(msgspec.Struct, kw_only=True):
    job_id: str
    prepared: Any
    ntime: int
    target: bytes
    difficulty: float


def _session_id(subscriptions: Any) -> str:
    """The session id in a subscribe reply's [["mining.set_difficulty", id], ["mining.notify", id]]."""
    if isinstance(subscriptions, list):
        for pair in subscriptions:
            if isinstance(pair, list) and len(pair) == 2 and pair[0] == "mining.notify" and isinstance(pair[1], str):
                return pair[1]
    return ""


def _stratum_prevhash(hex_text: str) -> bytes:
    raw = bytes.fromhex(hex_text)
    return b"".join(raw[i : i + 4][::-1] for i in range(0, 32, 4))


class StratumClient:
    """One simulated miner connection."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        *,
        password: str = "x",
        profile: MinerProfile | None = None,
        hashrate: float = 20_000.0,
        source_address: str | None = None,
        proxy_header: bytes = b"",
        rng: random.Random | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        reconnect: bool = False,
        reconnect_delay: float = 0.2,
    ) -> None:
        self.host, self.port, self.username, self.password = host, port, username, password
        self.profile = profile or MinerProfile()
        self.hashrate = hashrate
        self.source_address = source_address
        self.proxy_header = proxy_header
        self.rng = rng or random.Random()
        self.on_event = on_event
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.stats = ClientStats()
        self.session_id = ""                 # from the last subscribe reply; sent when reconnecting
        self._ids = itertools.count(1)
        self._pending: dict[int, str] = {}
        self._sent_at: dict[int, float] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._extranonce1 = b""
        self._extranonce2_size = 4
        self._version_mask = 0
        self._difficulty = 1.0
        self._work: _Work | None = None
        self._work_changed = asyncio.Event()
        self._authorized = asyncio.Event()
        self._closed = False
        self._stopping = asyncio.Event()

    async def _send(self, method: str, params: list[Any]) -> int:
        assert self._writer is not None
        request_id = next(self._ids)
        self._pending[request_id] = method
        self._writer.write(msgspec.json.encode({"id": request_id, "method": method, "params": params}) + b"\n")
        if method == "mining.submit":
            self._sent_at[request_id] = time.perf_counter()
        return request_id

    def _event(self, kind: str, **fields: Any) -> None:
        if self.on_event:
            self.on_event(kind, {"worker": self.username, **fields})

    async def run(self, duration: float | None = None) -> ClientStats:
        """Connect, mine until `duration` elapses (or forever), then disconnect. Without `reconnect`
        a lost connection ends the run with ConnectionError; with it, the miner connects again."""
        deadline = None if duration is None else time.monotonic() + duration
        while not self._stopping.is_set():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                await self._connection(left)
                return self.stats
            except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                if not self.reconnect or self._stopping.is_set():
                    raise
                self._event("disconnected", error=str(exc) or type(exc).__name__)
            if self._stopping.is_set() or (deadline is not None
                                           and time.monotonic() + self.reconnect_delay >= deadline):
                return self.stats
            await asyncio.sleep(self.reconnect_delay * (0.5 + self.rng.random()))
        return self.stats

    async def _connection(self, duration: float | None) -> None:
        """One connection, from connect to close: handshake, then read and mine until it ends."""
        local = (self.source_address, 0) if self.source_address else None
        reader, self._writer = await asyncio.open_connection(self.host, self.port, local_addr=local, limit=1 << 16)
        self.stats.connections += 1
        self._event("connected")
        self._closed = False
        self._work = None
        self._authorized.clear()
        self._work_changed.clear()
        if self.proxy_header:
            self._writer.write(self.proxy_header)
        if self.profile.version_rolling:
            await self._send("mining.configure", [["version-rolling"], {"version-rolling.mask": "1fffe000",
                                                                         "version-rolling.min-bit-count": 2}])
        await self._send("mining.subscribe", [self.profile.user_agent, self.session_id] if self.session_id
                         else [self.profile.user_agent])
        if self.profile.extranonce_subscribe:
            await self._send("mining.extranonce.subscribe", [])
        await self._send("mining.authorize", [self.username, self.password])
        if self.profile.suggest_difficulty is not None:
            await self._send("mining.suggest_difficulty", [self.profile.suggest_difficulty])
        reading = asyncio.create_task(self._read_loop(reader))
        mining = asyncio.create_task(self._mine_loop())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({reading, mining, stopping}, timeout=duration,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopping}:
                task.result()
            if stopping in done:
                await self._finish_submits(mining, reading)
        finally:
            self._closed = True
            await cancel_and_wait(stopping, reading, mining, absorb_errors=True)
            self._writer.close()
            self.stats.unanswered += sum(method == "mining.submit" for method in self._pending.values())
            self._pending.clear()
            self._sent_at.clear()

    def stop(self) -> None:
        """Stop hashing, wait (bounded) for the answers to the shares already submitted, then close:
        the accepted count is then exactly what the pool accepted."""
        self._stopping.set()

    async def _finish_submits(self, mining: asyncio.Task[None], reading: asyncio.Task[None],
                              timeout: float = 5.0) -> None:
        await cancel_and_wait(mining, absorb_errors=True)
        deadline = time.monotonic() + timeout
        while (any(m == "mining.submit" for m in self._pending.values()) and not reading.done()
               and time.monotonic() < deadline):
            await asyncio.sleep(0.02)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("pool closed the connection")
            self._handle(msgspec.json.decode(line))

    def _handle(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method:
            self._handle_notification(method, message.get("params") or [])
            return
        request_method = self._pending.pop(message.get("id"), "")  # type: ignore[arg-type]
        result, error = message.get("result"), message.get("error")
        if request_method == "mining.subscribe" and isinstance(result, list):
            extranonce1 = bytes.fromhex(result[1])
            session_id = _session_id(result[0])
            resumed = bool(self.session_id) and session_id == self.session_id and extranonce1 == self._extranonce1
            self.stats.resumed += resumed
            self._extranonce1, self.session_id = extranonce1, session_id
            self._extranonce2_size = int(result[2])
            self._event("subscribed", extranonce1=result[1], session_id=session_id, resumed=resumed)
        elif request_method == "mining.configure" and isinstance(result, dict):
            if result.get("version-rolling") is True:
                self._version_mask = int(result.get("version-rolling.mask", "0"), 16)
        elif request_method == "mining.authorize":
            if result is not True:
                raise ConnectionError(f"authorization failed: {error}")
            self._authorized.set()
        elif request_method == "mining.submit":
            sent_at = self._sent_at.pop(message.get("id"), None)  # type: ignore[arg-type]
            if sent_at is not None and len(self.stats.reply_seconds) < MAX_LATENCIES:
                self.stats.reply_seconds.append(time.perf_counter() - sent_at)
            if result is True:
                self.stats.accepted += 1
                self._event("accepted", extranonce1=self._extranonce1.hex())
            else:
                self.stats.rejected += 1
                reason = str(error[1]) if isinstance(error, list) and len(error) > 1 else str(error)
                self.stats.reject_reasons[reason] = self.stats.reject_reasons.get(reason, 0) + 1

    def _handle_notification(self, method: str, params: list[Any]) -> None:
        if method == "mining.set_difficulty":
            self._difficulty = float(params[0])
        elif method == "mining.set_extranonce":
            self._extranonce1 = bytes.fromhex(params[0])
            self._extranonce2_size = int(params[1])
        elif method == "mining.set_version_mask":
            self._version_mask = int(params[0], 16)
        elif method == "mining.notify":
            job_id, prevhash, coinb1, coinb2, branches, version, nbits, ntime, _clean = params[:9]
            prepared = native.prepare_job(
                bytes.fromhex(coinb1), bytes.fromhex(coinb2), b"".join(bytes.fromhex(b) for b in branches),
                _stratum_prevhash(prevhash), int(version, 16), int(nbits, 16))
            self._work = _Work(job_id=job_id, prepared=prepared, ntime=int(ntime, 16),
                               target=target_bytes(difficulty_to_target(self._difficulty)),
                               difficulty=self._difficulty)
            self.stats.notifies += 1
            self.stats.difficulty = self._difficulty
            self._work_changed.set()

    async def _mine_loop(self) -> None:
        await self._authorized.wait()
        extranonce2_counter = self.rng.randrange(1 << 16)
        while not self._closed:
            if self._work is None:
                await self._work_changed.wait()
                continue
            self._work_changed.clear()
            work = self._work
            extranonce2_counter += 1
            extranonce2 = (extranonce2_counter % (1 << (8 * self._extranonce2_size))).to_bytes(
                self._extranonce2_size, "little")
            version_bits = self.rng.getrandbits(32) & self._version_mask
            nonce = 0
            while nonce < 1 << 32 and not self._work_changed.is_set() and not self._closed:
                started = time.perf_counter()
                for n in range(nonce, min(nonce + HASH_CHUNK, 1 << 32)):
                    _digest, is_share, is_block = native.check_share(
                        work.prepared, self._extranonce1, extranonce2, work.ntime, n, version_bits,
                        self._version_mask, work.target)
                    if is_share:
                        await self._submit(work, extranonce2, n, version_bits, is_block)
                nonce += HASH_CHUNK
                self.stats.hashes += HASH_CHUNK
                # Emulate the device's hashrate: HASH_CHUNK hashes take HASH_CHUNK / hashrate seconds.
                spent = time.perf_counter() - started
                await asyncio.sleep(max(0.0, HASH_CHUNK / self.hashrate - spent))

    async def _submit(self, work: _Work, extranonce2: bytes, nonce: int, version_bits: int, is_block: bool) -> None:
        params = [self.username, work.job_id, extranonce2.hex(), f"{work.ntime:08x}", f"{nonce:08x}"]
        if self._version_mask:
            params.append(f"{version_bits:08x}")
        await self._send("mining.submit", params)
        self.stats.submitted += 1
        if is_block:
            self.stats.blocks += 1
            self._event("block", job_id=work.job_id)
