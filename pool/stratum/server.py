"""The asyncio server: admission (limits, bans, tagging), the session events' consumers, the resume
directory, the housekeeping sweep, and the admin's controls and snapshots. Every protocol decision
lives in session.py (sans-IO); one connection's I/O in connection.py; the listening ports and timers
in listeners.py; the fan-out of new work in fanout.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from pool.chain.types import BlockCandidate, JobSource
from pool.config.stratum import LimitsConfig, PortConfig, StratumConfig
from pool.stratum import messages as m
from pool.stratum.admission import Ban, BanList, IpCounter, OldestFirst, RejectBudget, TrustedProxies
from pool.stratum.connection import Connection
from pool.stratum.events import ShareRecord
from pool.stratum.extranonce import ExtranonceAllocator
from pool.stratum.fanout import FailedSessions, JobFanout
from pool.stratum.listeners import Listeners
from pool.stratum.reload_plan import StratumReload, plan_stratum_reload
from pool.stratum.resume import ParkedSession, ResumeDirectory, ResumeLookup
from pool.stratum.resume_link import ResumeLink
from pool.stratum.session import Session
from pool.stratum.session_records import Counters, SessionSnapshot
from pool.stratum.stats import StratumSnapshot, Timings, port_snapshots, worker_rows
from pool.stratum.tls import port_contexts

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


class StratumServer:
    """Public API for pool/app.py and the admin API: start/stop, stats/workers/connections, the
    controls (kick, reconnect, bans, port difficulty, limits, extranonce prefix)."""

    def __init__(self, config: StratumConfig, jobs: JobSource, *,
                 on_share: OnShare,
                 validate_account: Callable[[str], bool],
                 allocator: ExtranonceAllocator | None = None,
                 resume_directory: ResumeDirectory | None = None,
                 tag_connection: TagConnection = untagged,
                 classify_firmware: ClassifyFirmware = firmware_from_agent,
                 node: str = "", solo: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.jobs = jobs
        self.on_share = on_share
        self.validate_account = validate_account
        self.allocator = allocator or ExtranonceAllocator(park_seconds=config.session_resume_seconds)
        # With a shared directory, resumes work across processes/hosts (pool/stratum/resume.py).
        self.resume = (ResumeLink(resume_directory, self.allocator, config, clock, on_taken=self._taken_elsewhere)
                       if resume_directory is not None and config.session_resume_seconds > 0 else None)
        self._taken: set[str] = set()   # session ids resumed by another process: close, never park
        self.tag_connection = tag_connection
        self.classify_firmware = classify_firmware
        self.node = node
        self.share_write_failures = 0  # shares the consumer (ledger, journal) raised on; see dispatch
        self.solo = solo
        self.clock = clock
        self.bans = BanList()
        self.ip_counts = IpCounter()
        self.reject_budget = RejectBudget()
        self.trusted = TrustedProxies(config.trusted_proxies)
        self.timings = Timings()
        self.counters: dict[int, Counters] = {}
        self.tls_contexts: dict[int, Any] = {}   # id(port) -> ssl.SSLContext of its TLS port
        self._protocols: dict[Connection, None] = {}    # every open connection
        self._arrivals: OldestFirst[Connection] = OldestFirst()   # those not (yet) authorized, oldest first
        self._sessions: dict[Connection, None] = {}     # those with a session
        self.listeners = Listeners(config)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.fanout = JobFanout(jobs, self._sessions, self.timings, clock)
        jobs.add_listener(self._new_work)

    # ------------------------------------------------------------------------------------------------
    # lifecycle

    async def start(self) -> None:
        if self.resume is not None:
            await self.resume.start()
        self.reload_tls()
        for port in self.config.ports:
            self.counters.setdefault(id(port), Counters())
        await self.listeners.open(lambda port: Connection(self, port))
        self.fanout.last_broadcast = self.clock()
        self.listeners.every(self.config.limits.sweep_interval, self._sweep)
        self.listeners.every(self.config.notify_interval, self._keepalive)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, tell miners to reconnect (another worker process/host takes them), close."""
        self.listeners.close()
        for proto in list(self._protocols):
            if proto.session is not None and self.config.reconnect_on_shutdown:
                proto.transport.write(m.reconnect())
            proto.transport.close()
        await self.listeners.wait_closed()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        deadline = time.monotonic() + timeout
        while self._protocols and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for proto in list(self._protocols):
            proto.transport.abort()
        if self.resume is not None:
            await asyncio.sleep(0)           # let the aborted ones park before the last publish
            await self.resume.stop()

    # ------------------------------------------------------------------------------------------------
    # connections

    def connection_opened(self, conn: Connection) -> None:
        self._protocols[conn] = None
        self._arrivals.add(conn)
        if len(self._protocols) > self.config.limits.max_connections:
            # Full: the oldest connection that has not authorized makes room (idle and slowloris
            # sockets cannot lock miners out); with none, the newcomer is refused.
            victim = self._arrivals.pop_oldest(lambda c: c is not conn and self._unauthorized(c))
            if victim is None:
                conn.drop("server connection limit")
                return
            victim.drop("server connection limit: the oldest connection not authorized makes room")
        if self.trusted and conn.socket_ip in self.trusted:
            conn.pending_proxy = True       # the real address arrives in the PROXY header
            return
        self.admit(conn, conn.socket_ip)

    def _unauthorized(self, conn: Connection) -> bool:
        """Open, not closing, and no worker authorized on it (a resume in progress is left alone)."""
        if conn not in self._protocols or conn.transport.is_closing():
            return False
        session = conn.session
        return not session.workers if session is not None else conn.resuming is None

    def admit(self, proto: Connection, ip: str, first: bytes = b"") -> None:
        now = self.clock()
        limits = self.config.limits
        ban = self.bans.banned(ip, now)
        if ban is not None:
            proto.drop(f"banned: {ban.reason}")
            return
        if not self.ip_counts.acquire(ip, limits.max_connections_per_ip):
            proto.transport.write(m.error_reply(None, m.OTHER, "Too many connections from your address"))
            proto.drop("per-IP connection limit")
            return
        proto.counted = ip
        context = self.tls_contexts.get(id(proto.port))
        if context is not None:              # after any PROXY header: the rest is TLS
            first = proto.start_tls(context, first)
            if proto.transport.is_closing():
                return
        try:
            country, subdivision, hosting = self.tag_connection(ip)
        except Exception:
            log.exception("tag_connection failed for a connection")
            country, subdivision, hosting = "ZZ", "", False
        proto.session = Session(
            config=self.config, port=proto.port, jobs=self.jobs, allocator=self.allocator,
            validate_account=self.validate_account, classify_firmware=self.classify_firmware, now=now,
            counters=self.counters.setdefault(id(proto.port), Counters()), country=country,
            subdivision=subdivision, hosting=hosting, node=self.node, solo=self.solo, peer=ip,
            resume_lookups=self.resume is not None)
        self._sessions[proto] = None
        if first:
            proto.feed(proto.session, first)

    def reload_tls(self) -> list[int]:
        """(Re)load every TLS port's certificate and key; the ports reloaded. New connections use the
        new ones, open connections keep theirs. All load or none is swapped (ConfigError names the port)."""
        fresh = port_contexts(self.config.ports)
        self.tls_contexts.update(fresh)
        return [port.port for port in self.config.ports if id(port) in fresh]

    def connection_closed(self, proto: Connection) -> None:
        self._protocols.pop(proto, None)
        if proto.counted:
            self.ip_counts.release(proto.counted)
            proto.counted = ""
        session = proto.session
        if session is not None:
            self._sessions.pop(proto, None)
            self._park(session.connection_lost(self.clock()))
        elif proto.resuming is not None:
            self._sessions.pop(proto, None)   # _resume parks whatever the lookup brings

    def _park(self, parked: ParkedSession | None) -> None:
        if parked is not None and self.resume is not None:
            if parked.token in self._taken:
                # Another process holds it now; the local park only expires (and settles) here.
                self._taken.discard(parked.token)
                return
            self.resume.publish(parked)

    def _taken_elsewhere(self, tokens: list[str]) -> None:
        """The directory says other processes resumed these sessions while this one was silent past
        the holder timeout: the same extranonce1 must not stay live twice."""
        wanted = set(tokens)
        for proto in list(self._sessions):
            session = proto.session
            if session is not None and session.session_id in wanted:
                self._taken.add(session.session_id)
                proto.drop("session resumed on another process")

    def announce(self, proto: Connection, session: Session) -> None:
        proto.announced = True
        if self.resume is not None:      # resumable on another process should this one die
            self.resume.announce(session.session_id, session.extranonce1)

    # ------------------------------------------------------------------------------------------------
    # the hot path

    def dispatch(self, proto: Connection, session: Session) -> None:
        # Each event in its own try: a share write that fails (the journal on a full disk, say)
        # must not cost the block candidate emitted by the same read.
        events = session.events
        for event in events:
            try:
                match event:
                    case ShareRecord():
                        self.on_share(event)
                    case BlockCandidate():
                        self._submit_block(event)
                    case ResumeLookup(token=token):
                        self._begin_resume(proto, session, token)
            except Exception:
                if type(event) is ShareRecord:
                    # Not durable, so not acknowledged: its reply (not yet written) becomes a reject.
                    self.share_write_failures += 1
                    session.share_not_recorded(event)
                log.exception("handling %s from %s failed", type(event).__name__, session.peer)
        events.clear()

    def charge_rejects(self, session: Session, submits: int, rejects: int, now: float) -> None:
        """Per-address reject budget: many connections each under reject_budget_per_connection can
        still make a storm; past reject_budget_per_ip the address is banned and all of it dropped."""
        limits = self.config.limits
        if not self.reject_budget.charge(session.peer, submits, rejects, now, window=limits.ban_window_seconds,
                                         limit=limits.reject_budget_per_ip, ratio=limits.reject_budget_ratio):
            return
        self.reject_budget.forget(session.peer)
        if session.peer in self.trusted:
            return       # a balancer's own address is every miner behind it: connection budgets only
        session.ban_reason = session.close_reason = "reject budget of the address exceeded"
        log.warning("reject budget of %s exceeded: banned for %.0f s", session.peer, limits.ban_seconds)
        if limits.ban_seconds > 0:
            try:
                self.add_ban(session.peer, limits.ban_seconds, session.ban_reason)   # drops its connections
            except ValueError as exc:                # a trusted proxy's own address is never banned
                log.warning("reject budget: %s", exc)
                session.ban_reason = None            # the connection still ends

    def closing(self, proto: Connection, session: Session) -> None:
        # A trusted proxy's own address (a balancer sending no header) is never banned: every miner
        # behind it would be; the offending connection ends all the same.
        if session.ban_reason and self.config.limits.ban_seconds > 0 and session.peer not in self.trusted:
            self.bans.add(session.peer, self.config.limits.ban_seconds, session.ban_reason, self.clock())

    def _begin_resume(self, proto: Connection, session: Session, token: str) -> None:
        proto.session = None                # fan-out and the sweep leave it alone meanwhile
        proto.resuming = session
        proto.transport.pause_reading()
        self._spawn(self._resume(proto, session, token))

    async def _resume(self, proto: Connection, session: Session, token: str) -> None:
        assert self.resume is not None
        parked = await self.resume.claim(token)
        now = self.clock()
        proto.resuming = None
        try:
            session.resume_answer(parked, now)
        except Exception:
            log.exception("resume answer failed")
            session.close_reason = "internal error"
        if proto.transport.is_closing():
            self._sessions.pop(proto, None)
            self._park(session.connection_lost(now))
            return
        proto.session = session
        proto.transport.resume_reading()
        proto.feed(session, b"")            # what arrived meanwhile, held by the session, in order

    def _submit_block(self, candidate: BlockCandidate) -> None:
        log.warning("BLOCK CANDIDATE height %d by %s: %s", candidate.height, candidate.worker,
                    candidate.header_hash[::-1].hex())
        self._spawn(self.jobs.submit_block(candidate))

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` as a task stop() waits for (a block submission, a resume look-up)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------------------------------------
    # fan-out

    def _new_work(self, clean_jobs: bool) -> None:
        if not self.listeners.listening:
            return
        try:
            self.fanout.broadcast(clean_jobs, keepalive=False)
        except Exception:
            log.exception("broadcast failed")

    def _keepalive(self) -> None:
        if self.clock() - self.fanout.last_broadcast >= self.config.notify_interval - 0.5:
            self.fanout.broadcast(False, keepalive=True)

    # ------------------------------------------------------------------------------------------------
    # housekeeping

    def _sweep(self) -> None:
        now = self.clock()
        limits = self.config.limits
        failed = FailedSessions("housekeeping sweep", self.clock)
        self.reject_budget.prune(now, limits.ban_window_seconds)
        self._arrivals.prune(self._unauthorized)
        for proto in list(self._protocols):
            session = proto.session
            transport = proto.transport
            if transport.get_write_buffer_size() > limits.max_write_buffer:
                transport.abort()            # does not read: nothing more will be delivered anyway
                continue
            if session is None:
                if proto.pending_proxy and now - proto.connected_at > limits.authorize_timeout:
                    proto.pending_proxy = False
                    proto.drop("no PROXY header in time")
                continue
            try:
                session.tick(now)
                if session.out or session.close_reason:
                    proto.flush(session)
            except Exception:
                failed.add(proto)
        if failed.connections:
            failed.close()

    @property
    def ports(self) -> list[tuple[str, int]]:
        return [(p.host, p.port) for p in self.config.ports]

    # ------------------------------------------------------------------------------------------------
    # the admin side: snapshots and controls (between socket events, on the event loop; sessions
    # are reached only through their public methods)

    def snapshot(self) -> StratumSnapshot:
        """This process's stratum figures (/metrics, the admin API and the inter-process bus read it)."""
        return StratumSnapshot(
            connections=len(self._protocols), sessions=len(self._sessions),
            share_write_failures=self.share_write_failures, bans=len(self.bans.entries(self.clock())),
            ports=port_snapshots(self.config.ports, self.counters, self._sessions),
            extranonce=self.allocator.snapshot(), resume=self.resume.snapshot() if self.resume is not None else None,
            fanout=self.timings.fanout_histogram.snapshot(),
            block_to_notify=self.timings.block_to_notify_histogram.snapshot())

    def workers(self) -> list[dict[str, Any]]:
        """One row per worker per connection, with the hashrate inputs (accepted difficulty, times)."""
        return worker_rows(self._sessions)

    def connections(self) -> list[SessionSnapshot]:
        """A snapshot of every connection's session (one row per connection, workers or not)."""
        return [proto.session.snapshot() for proto in self._sessions if proto.session is not None]

    def _matching(self, worker: str) -> list[Connection]:
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
            proto.drop("kicked by admin")
        return len(matches)

    def reconnect(self, worker: str, host: str | None = None, port: int | None = None, wait: int = 0) -> int:
        """Send client.reconnect to every connection carrying `worker`; closed after a grace period."""
        matches = self._matching(worker)
        now = self.clock()
        for proto in matches:
            assert proto.session is not None
            proto.session.request_reconnect(now, host, port, wait)
            proto.flush(proto.session)
        return len(matches)

    def _to_worker(self, worker: str, send: Callable[[Session], bool]) -> int:
        """Let `send` queue a message on each connection carrying `worker` (it returns False to skip
        one) and write it out; returns how many connections got it."""
        count = 0
        for proto in self._matching(worker):
            assert proto.session is not None
            if send(proto.session):
                proto.flush(proto.session)
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
        """Ban an address or CIDR (ValueError if malformed) and drop its live connections. A network
        of every address, or one holding a trusted proxy (every miner behind it), is refused."""
        network = ipaddress.ip_network(target, strict=False)
        if network.prefixlen == 0:
            raise ValueError(f"target: {target} would ban every address; refused")
        proxy_network = self.trusted.overlapping(network)
        if proxy_network is not None:
            raise ValueError(f"target: {target} covers the trusted proxy {proxy_network}; refused")
        now = self.clock()
        ban = self.bans.add(target, seconds, reason, now)
        for proto in list(self._sessions):
            if proto.session is not None and self.bans.banned(proto.session.peer, now) is not None:
                proto.drop(f"banned: {reason}")
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

    def plan_reload(self, new: StratumConfig) -> StratumReload:
        """This server's part of a config reload, checked and prepared (certificates loaded), nothing
        changed yet; ConfigError names the key. What is live: pool/stratum/reload_plan.py."""
        return plan_stratum_reload(self.config, new)

    def apply_reload(self, plan: StratumReload) -> list[str]:
        """Put a plan from plan_reload in force (cannot fail): new connections use the new certificates
        and port difficulties, every connection the new limits. The keys applied."""
        self.tls_contexts.update(plan.tls)
        if plan.limits is not None:
            self.config.limits = plan.limits
        for change in plan.ports:
            port = self.config.ports[change.index]
            port.start_difficulty = change.start_difficulty
            port.min_difficulty = change.min_difficulty
            port.max_difficulty = change.max_difficulty
        return list(plan.applied)

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
            proto.flush(session)
