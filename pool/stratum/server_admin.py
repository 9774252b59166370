"""The admin and metrics half of StratumServer (a mixin): snapshots, per-worker controls, bans,
runtime port difficulty and limits, a new extranonce1 prefix. Everything here runs on the event loop
between socket events; sessions are reached only through their public methods.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pool.config.stratum import LimitsConfig, PortConfig, StratumConfig
from pool.stratum.extranonce import ExtranonceAllocator
from pool.stratum.limits import Ban, BanList, TrustedProxies
from pool.stratum.resume_link import ResumeLink
from pool.stratum.session import Session
from pool.stratum.session_records import Counters, SessionSnapshot
from pool.stratum.stats import Timings, port_stats, worker_rows

if TYPE_CHECKING:
    from pool.stratum.server import StratumProtocol


class ServerAdmin:
    # StratumServer state used here (set in StratumServer.__init__).
    config: StratumConfig
    node: str
    share_write_failures: int
    clock: Callable[[], float]
    allocator: ExtranonceAllocator
    resume: ResumeLink | None
    bans: BanList
    trusted: TrustedProxies
    timings: Timings
    counters: dict[int, Counters]
    _protocols: dict[StratumProtocol, None]
    _sessions: dict[StratumProtocol, None]

    def _drain(self, proto: StratumProtocol, session: Session) -> None:
        raise NotImplementedError

    def _drop(self, proto: StratumProtocol, reason: str) -> None:
        raise NotImplementedError


    def stats(self) -> dict[str, Any]:
        """Snapshot for the admin API / metrics: per port, totals and timing figures."""
        ports = port_stats(self.config.ports, self.counters, self._sessions)
        totals: dict[str, Any] = {"connections": len(self._protocols), "sessions": len(self._sessions),
                                  "accepted": 0, "accepted_difficulty": 0.0, "blocks": 0, "rejected": {},
                                  "share_write_failures": self.share_write_failures}
        for row in ports:
            totals["accepted"] += row["accepted"]
            totals["accepted_difficulty"] += row["accepted_difficulty"]
            totals["blocks"] += row["blocks"]
            for key, value in row["rejected"].items():
                totals["rejected"][key] = totals["rejected"].get(key, 0) + value
        return {"node": self.node, "totals": totals, "ports": ports, "timings": self.timings.snapshot(),
                "bans": len(self.bans.entries(self.clock())), "extranonce": {
                    "prefix": self.allocator.prefix, "prefix_bits": self.allocator.prefix_bits,
                    "live": self.allocator.live, "parked": self.allocator.parked,
                    "resume": self.resume.stats() if self.resume is not None else None}}

    def workers(self) -> list[dict[str, Any]]:
        """One row per worker per connection, with the hashrate inputs (accepted difficulty, times)."""
        return worker_rows(self._sessions)

    def connections(self) -> list[SessionSnapshot]:
        """A snapshot of every connection's session (one row per connection, workers or not)."""
        return [proto.session.snapshot() for proto in self._sessions if proto.session is not None]

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
