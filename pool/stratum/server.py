"""The asyncio layer: sockets in, lines to sessions, bytes and events out. Thin on purpose: every
protocol decision lives in session.py; this file owns transports, limits, timers and fan-out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pool.chain.types import BlockCandidate, Job, JobSource
from pool.config.stratum import LimitsConfig, PortConfig, StratumConfig
from pool.shares.record import ShareRecord
from pool.stratum import messages as m
from pool.stratum import proxy
from pool.stratum.extranonce import ExtranonceAllocator
from pool.stratum.limits import Ban, BanList, IpCounter, TrustedProxies
from pool.stratum.session import Session
from pool.stratum.state import Counters, SentJob
from pool.stratum.stats import Timings, port_stats, worker_rows

log = logging.getLogger("pool.stratum")

TagConnection = Callable[[str], tuple[str, str, bool]]
ClassifyFirmware = Callable[[str], str]
OnShare = Callable[[ShareRecord], None]


def untagged(ip: str) -> tuple[str, str, bool]:
    return ("ZZ", "", False)


def firmware_from_agent(user_agent: str) -> str:
    """Fallback classifier: the user agent's name part, lower-cased ("cgminer/4.11.1" -> "cgminer")."""
    name = user_agent.split("/", 1)[0].strip().lower()
    return name[:32] or "unknown"


class StratumProtocol(asyncio.Protocol):
    __slots__ = ("buffer", "check_first", "connected_at", "counted", "pending_proxy", "port", "server", "session",
                 "socket_ip", "transport")

    def __init__(self, server: StratumServer, port: PortConfig) -> None:
        self.server = server
        self.port = port
        self.transport: Any = None
        self.session: Session | None = None
        self.buffer = b""
        self.socket_ip = ""
        self.pending_proxy = False
        self.check_first = True
        self.counted = ""
        self.connected_at = 0.0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server._connection_made(self)

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None:
            if self.pending_proxy:
                self.server._proxy_data(self, data)
            return
        if self.check_first:
            self.check_first = False
            if proxy.starts_like_proxy(data[:16]) is not False:
                self.server._drop(self, "PROXY header from an address that is not a trusted proxy")
                return
        self.server._lines(self, session, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connection_lost(self)

    def pause_writing(self) -> None:
        # The sweep disconnects clients whose buffer stays above the limit; nothing to do here.
        pass


class StratumServer:
    """Public API for pool/app.py and the admin API: see __init__, start/stop and the admin section."""

    def __init__(self, config: StratumConfig, jobs: JobSource, *,
                 on_share: OnShare,
                 validate_account: Callable[[str], bool],
                 allocator: ExtranonceAllocator | None = None,
                 tag_connection: TagConnection = untagged,
                 classify_firmware: ClassifyFirmware = firmware_from_agent,
                 node: str = "", solo: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.jobs = jobs
        self.on_share = on_share
        self.validate_account = validate_account
        self.allocator = allocator or ExtranonceAllocator(park_seconds=config.session_resume_seconds)
        self.tag_connection = tag_connection
        self.classify_firmware = classify_firmware
        self.node = node
        self.solo = solo
        self.clock = clock
        self.bans = BanList()
        self.ip_counts = IpCounter()
        self.trusted = TrustedProxies(config.trusted_proxies)
        self.timings = Timings()
        self.counters: dict[int, Counters] = {}
        self._protocols: dict[StratumProtocol, None] = {}    # every open connection
        self._sessions: dict[StratumProtocol, None] = {}     # those with a session
        self._servers: list[asyncio.AbstractServer] = []
        self._timers: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._keepalive_seq = 0
        self._last_broadcast = 0.0
        self._listening = False
        jobs.add_listener(self._new_work)

    # ------------------------------------------------------------------------------------------------
    # lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for port in self.config.ports:
            self.counters.setdefault(id(port), Counters())
            server = await loop.create_server(
                lambda port=port: StratumProtocol(self, port), host=port.host or None, port=port.port,
                reuse_port=self.config.reuse_port or None, backlog=self.config.backlog)
            self._servers.append(server)
            if port.port == 0:   # ephemeral (tests): report the one the OS chose
                port.port = server.sockets[0].getsockname()[1]
        self._listening = True
        self._last_broadcast = self.clock()
        self._schedule(self.config.limits.sweep_interval, self._sweep)
        self._schedule(self.config.notify_interval, self._keepalive)
        log.info("stratum listening on %s", ", ".join(f"{p.host}:{p.port}" for p in self.config.ports))

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, tell miners to reconnect (another worker process/host takes them), close."""
        self._listening = False
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for server in self._servers:
            server.close()
        for proto in list(self._protocols):
            if proto.session is not None and self.config.reconnect_on_shutdown:
                proto.transport.write(m.reconnect())
            proto.transport.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        deadline = time.monotonic() + timeout
        while self._protocols and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for proto in list(self._protocols):
            proto.transport.abort()

    def _schedule(self, delay: float, callback: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()

        def run() -> None:
            if not self._listening:
                return
            try:
                callback()
            except Exception:
                log.exception("stratum timer %s failed", callback.__name__)
            self._schedule(delay, callback)

        self._timers = [h for h in self._timers if not h.cancelled()][-8:]
        self._timers.append(loop.call_later(delay, run))

    # ------------------------------------------------------------------------------------------------
    # connections

    def _connection_made(self, proto: StratumProtocol) -> None:
        self._protocols[proto] = None
        proto.connected_at = self.clock()
        peer = proto.transport.get_extra_info("peername")
        proto.socket_ip = proxy.normalize_ip(peer[0]) if peer else ""
        if len(self._protocols) > self.config.limits.max_connections:
            self._drop(proto, "server connection limit")
            return
        if self.trusted and proto.socket_ip in self.trusted:
            proto.pending_proxy = True       # the real address arrives in the PROXY header
            return
        self._admit(proto, proto.socket_ip)

    def _proxy_data(self, proto: StratumProtocol, data: bytes) -> None:
        buffered = proto.buffer + data
        try:
            parsed = proxy.parse(buffered)
        except proxy.ProxyError as exc:
            if not self.config.proxy_header_required and proxy.starts_like_proxy(buffered) is False:
                proto.pending_proxy = False
                proto.buffer = b""
                self._admit(proto, proto.socket_ip, buffered)
                return
            self._drop(proto, f"bad PROXY header: {exc}")
            return
        if parsed is None:
            proto.buffer = buffered
            if len(buffered) > proxy.V2_MAX_PAYLOAD + 16:
                self._drop(proto, "PROXY header too long")
            return
        header, used = parsed
        proto.pending_proxy = False
        proto.buffer = b""
        proto.check_first = False
        self._admit(proto, header.source_ip or proto.socket_ip, buffered[used:])

    def _admit(self, proto: StratumProtocol, ip: str, first: bytes = b"") -> None:
        now = self.clock()
        limits = self.config.limits
        ban = self.bans.banned(ip, now)
        if ban is not None:
            self._drop(proto, f"banned: {ban.reason}")
            return
        if not self.ip_counts.acquire(ip, limits.max_connections_per_ip):
            proto.transport.write(m.error_reply(None, m.OTHER, "Too many connections from your address"))
            self._drop(proto, "per-IP connection limit")
            return
        proto.counted = ip
        try:
            country, subdivision, hosting = self.tag_connection(ip)
        except Exception:
            log.exception("tag_connection failed for a connection")
            country, subdivision, hosting = "ZZ", "", False
        proto.session = Session(
            config=self.config, port=proto.port, jobs=self.jobs, allocator=self.allocator,
            validate_account=self.validate_account, classify_firmware=self.classify_firmware, now=now,
            counters=self.counters.setdefault(id(proto.port), Counters()), country=country,
            subdivision=subdivision, hosting=hosting, node=self.node, solo=self.solo, peer=ip)
        self._sessions[proto] = None
        if first:
            self._lines(proto, proto.session, first)

    def _drop(self, proto: StratumProtocol, reason: str) -> None:
        log.debug("closing %s: %s", proto.socket_ip, reason)
        proto.transport.close()

    def _connection_lost(self, proto: StratumProtocol) -> None:
        self._protocols.pop(proto, None)
        if proto.counted:
            self.ip_counts.release(proto.counted)
            proto.counted = ""
        session = proto.session
        if session is not None:
            self._sessions.pop(proto, None)
            session.connection_lost(self.clock())

    # ------------------------------------------------------------------------------------------------
    # the hot path

    def _lines(self, proto: StratumProtocol, session: Session, data: bytes) -> None:
        if proto.buffer:
            data = proto.buffer + data
        limit = self.config.limits.max_line_bytes
        lines = data.split(b"\n")
        proto.buffer = tail = lines.pop()
        if len(tail) > limit:
            proto.buffer = b""
            session.out.append(m.error_reply(None, m.OTHER, "Line too long"))
            session.close_reason = "line too long"
            lines = []
        now = self.clock()
        for line in lines:
            if len(line) > limit:
                session.out.append(m.error_reply(None, m.OTHER, "Line too long"))
                session.close_reason = "line too long"
                break
            if len(line) > 1:
                session.receive_line(line, now)
                if session.close_reason:
                    break
        self._drain(proto, session)

    def _drain(self, proto: StratumProtocol, session: Session) -> None:
        events = session.events
        if events:
            try:
                for event in events:
                    if type(event) is ShareRecord:
                        self.on_share(event)
                    elif type(event) is BlockCandidate:
                        self._submit_block(event)
            except Exception:
                log.exception("share consumer failed")
            events.clear()
        out = session.out
        if out:
            proto.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
        if session.close_reason is not None:
            if session.ban_reason and self.config.limits.ban_seconds > 0:
                self.bans.add(session.peer, self.config.limits.ban_seconds, session.ban_reason, self.clock())
            self._drop(proto, session.close_reason)

    def _submit_block(self, candidate: BlockCandidate) -> None:
        log.warning("BLOCK CANDIDATE height %d by %s: %s", candidate.height, candidate.worker,
                    candidate.header_hash[::-1].hex())
        task = asyncio.ensure_future(self.jobs.submit_block(candidate))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------------------------------------
    # fan-out

    def _new_work(self, clean_jobs: bool) -> None:
        if not self._listening:
            return
        try:
            self._broadcast(clean_jobs, keepalive=False)
        except Exception:
            log.exception("broadcast failed")

    def _keepalive(self) -> None:
        if self.clock() - self._last_broadcast >= self.config.notify_interval - 0.5:
            self._broadcast(False, keepalive=True)

    def _broadcast(self, clean: bool, *, keepalive: bool) -> None:
        started = time.perf_counter()
        now = self.clock()
        self._last_broadcast = now
        jobs: dict[str, tuple[Job, str, int, bytes, dict[float, SentJob]] | None] = {}
        if keepalive:
            self._keepalive_seq += 1
        first_write = 0.0
        sent = 0
        for proto in self._sessions:
            session = proto.session
            if session is None or not session.working:
                continue
            key = session.payout_key
            entry = jobs.get(key, False)
            if entry is False:
                entry = jobs[key] = self._job_entry(key, keepalive, now, clean)
            if entry is None:
                continue
            data = session.push_job(entry[0], entry[1], entry[2], clean, entry[3], now, entry[4])
            if data is not None:
                proto.transport.write(data)
                if not sent:
                    first_write = time.time()
                sent += 1
        finished = time.perf_counter()
        job = next((e[0] for e in jobs.values() if e), None)
        self.timings.record_fanout(finished - started, sent)
        if clean and job is not None and sent:
            self.timings.record_block_to_notify(max(0.0, first_write - job.created_at))

    def _job_entry(self, payout_key: str, keepalive: bool, now: float,
                   clean: bool) -> tuple[Job, str, int, bytes, dict[float, SentJob]] | None:
        job = self.jobs.current_job(payout_key)
        if job is None:
            return None
        wire_id, ntime = job.job_id, job.ntime
        if keepalive:
            wire_id, ntime = f"{job.job_id}.k{self._keepalive_seq:x}", max(job.ntime, int(now))
        return job, wire_id, ntime, m.job_wire(job).notify(wire_id, ntime, clean), {}

    # ------------------------------------------------------------------------------------------------
    # housekeeping

    def _sweep(self) -> None:
        now = self.clock()
        limits = self.config.limits
        for proto in list(self._protocols):
            session = proto.session
            transport = proto.transport
            if transport.get_write_buffer_size() > limits.max_write_buffer:
                transport.abort()            # does not read: nothing more will be delivered anyway
                continue
            if session is None:
                if proto.pending_proxy and now - proto.connected_at > limits.authorize_timeout:
                    proto.pending_proxy = False
                    self._drop(proto, "no PROXY header in time")
                continue
            session.tick(now)
            if session.out or session.close_reason:
                self._drain(proto, session)

    # ------------------------------------------------------------------------------------------------
    # admin and metrics

    def stats(self) -> dict[str, Any]:
        """Snapshot for the admin API / metrics: per port, totals and timing figures."""
        ports = port_stats(self.config.ports, self.counters, self._sessions)
        totals: dict[str, Any] = {"connections": len(self._protocols), "sessions": len(self._sessions),
                                  "accepted": 0, "accepted_difficulty": 0.0, "blocks": 0, "rejected": {}}
        for row in ports:
            totals["accepted"] += row["accepted"]
            totals["accepted_difficulty"] += row["accepted_difficulty"]
            totals["blocks"] += row["blocks"]
            for key, value in row["rejected"].items():
                totals["rejected"][key] = totals["rejected"].get(key, 0) + value
        return {"node": self.node, "totals": totals, "ports": ports, "timings": self.timings.snapshot(),
                "bans": len(self.bans.entries(self.clock())), "extranonce": {
                    "prefix": self.allocator.prefix, "prefix_bits": self.allocator.prefix_bits,
                    "live": self.allocator.live, "parked": self.allocator.parked}}

    def workers(self) -> list[dict[str, Any]]:
        """One row per worker per connection, with the hashrate inputs (accepted difficulty, times)."""
        return worker_rows(self._sessions)

    def _matching(self, worker: str) -> list[StratumProtocol]:
        found = []
        for proto in self._sessions:
            session = proto.session
            if session is not None and (worker in session.workers or
                                        any(w.account == worker for w in session.workers.values())):
                found.append(proto)
        return found

    def kick(self, worker: str) -> int:
        """Disconnect every connection carrying `worker` (a worker name or an account)."""
        matches = self._matching(worker)
        for proto in matches:
            self._drop(proto, "kicked by admin")
        return len(matches)

    def reconnect(self, worker: str, host: str | None = None, port: int | None = None, wait: int = 0) -> int:
        """Send client.reconnect to every connection carrying `worker`; closed after a grace period."""
        matches = self._matching(worker)
        now = self.clock()
        for proto in matches:
            assert proto.session is not None
            proto.session.request_reconnect(now, host, port, wait)
            self._drain(proto, proto.session)
        return len(matches)

    def _to_worker(self, worker: str, send: Callable[[Session], bool]) -> int:
        """Let `send` queue a message on each connection carrying `worker` (it returns False to skip
        one) and write it out; returns how many connections got it."""
        count = 0
        for proto in self._matching(worker):
            assert proto.session is not None
            if send(proto.session):
                self._drain(proto, proto.session)
                count += 1
        return count

    def show_message(self, worker: str, text: str) -> int:
        return self._to_worker(worker, lambda session: session.show_message(text))

    def set_version_mask(self, worker: str, mask: int) -> int:
        """mining.set_version_mask to the worker's connections that negotiated version rolling (the
        new mask is the pool's mask AND `mask`); returns how many were sent."""
        return self._to_worker(worker, lambda session: session.send_version_mask(mask))

    def request_version(self, worker: str) -> int:
        """client.get_version to the worker's connections; the answer lands in the session's
        info["reported-version"] (and becomes the user agent when subscribe gave none)."""
        def ask(session: Session) -> bool:
            session.request_version()
            return True

        return self._to_worker(worker, ask)

    def list_bans(self) -> list[Ban]:
        return self.bans.entries(self.clock())

    def add_ban(self, target: str, seconds: float, reason: str = "admin") -> Ban:
        """Ban an address or CIDR (ValueError if malformed) and drop its live connections."""
        now = self.clock()
        ban = self.bans.add(target, seconds, reason, now)
        for proto in list(self._sessions):
            if proto.session is not None and self.bans.banned(proto.session.peer, now) is not None:
                self._drop(proto, f"banned: {reason}")
        return ban

    def remove_ban(self, target: str) -> bool:
        return self.bans.remove(target)

    def set_port_difficulty(self, port: int, *, start: float | None = None, minimum: float | None = None,
                            maximum: float | None = None) -> PortConfig:
        """Change a port's difficulty settings at runtime (ValueError names the problem). Live
        connections keep their difficulty until their next retarget, which uses the new bounds."""
        for config in self.config.ports:
            if config.port == port:
                candidate = PortConfig(**{f: getattr(config, f) for f in config.__struct_fields__})
                if start is not None:
                    candidate.start_difficulty = start
                if minimum is not None:
                    candidate.min_difficulty = minimum
                if maximum is not None:
                    candidate.max_difficulty = maximum
                candidate.validate(f"port {port}")
                config.start_difficulty = candidate.start_difficulty
                config.min_difficulty = candidate.min_difficulty
                config.max_difficulty = candidate.max_difficulty
                return config
        raise ValueError(f"no stratum port {port}")

    def reload_limits(self, limits: LimitsConfig) -> None:
        """New limits apply at once to every connection; nobody is dropped for the change itself."""
        limits.validate("limits")
        self.config.limits = limits

    def set_extranonce_prefix(self, prefix: int, prefix_bits: int) -> None:
        """A new prefix lease: new connections use it; miners that subscribed to extranonce changes
        are moved now, the rest keep theirs until they reconnect."""
        self.allocator.set_prefix(prefix, prefix_bits)
        now = self.clock()
        for proto in list(self._sessions):
            session = proto.session
            if session is None or not session.extranonce_subscribed or not session.subscribed:
                continue
            extranonce1, token = self.allocator.allocate(now)
            self.allocator.release(session.extranonce1)
            session.session_id = token
            session.set_extranonce(extranonce1, now)
            self._drain(proto, session)

    @property
    def ports(self) -> list[tuple[str, int]]:
        return [(p.host, p.port) for p in self.config.ports]
