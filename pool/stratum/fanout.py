"""Job fan-out: new work (and the keep-alive re-notify) to every working session, and the failure
pass that lets one broken session's exception leave everybody else's work and housekeeping alone.

The broadcast is the pool's second hot path (one notify to tens of thousands of connections): the
notify line is encoded once per payout key, each difficulty gets one shared SentJob, and the loop does
no more than ask each session for its bytes (`Session.push_job`) and write them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pool.chain.types import Job, JobSource
from pool.stratum import messages as m
from pool.stratum.connection import Connection
from pool.stratum.session_records import SentJob
from pool.stratum.stats import Timings

log = logging.getLogger("pool.stratum")

# One payout key's job for a broadcast: (job, wire id, ntime, the notify line, SentJob per difficulty).
_Entry = tuple[Job, str, int, bytes, dict[float, SentJob]]


class FailedSessions:
    """The sessions whose code raised during one pass over many (a bug a client found). The pass
    carries on for everyone else; the first traceback of the pass is logged, the rest counted, and
    `close` halts and closes them once the pass is over."""

    __slots__ = ("clock", "connections", "where")

    def __init__(self, where: str, clock: Callable[[], float]) -> None:
        self.where = where
        self.clock = clock
        self.connections: list[Connection] = []

    def add(self, proto: Connection) -> None:
        """Call in the except block of the failing session."""
        if not self.connections:
            log.exception("%s failed for the session of %s; dropping it", self.where, proto.socket_ip)
        self.connections.append(proto)

    def close(self) -> None:
        if len(self.connections) > 1:
            log.error("%s failed for %d sessions in one pass; dropped them", self.where, len(self.connections))
        for proto in self.connections:
            if proto.session is not None:
                proto.session.halt(self.clock())
            proto.transport.close()


class JobFanout:
    """Writes a job to every working session of `sessions` (the server's own dict of connections
    with a session, read live) and records the fan-out's timings."""

    __slots__ = ("clock", "jobs", "keepalive_seq", "last_broadcast", "sessions", "timings")

    def __init__(self, jobs: JobSource, sessions: dict[Connection, None], timings: Timings,
                 clock: Callable[[], float]) -> None:
        self.jobs = jobs
        self.sessions = sessions
        self.timings = timings
        self.clock = clock
        self.keepalive_seq = 0
        self.last_broadcast = 0.0

    def broadcast(self, clean: bool, *, keepalive: bool) -> None:
        started = time.perf_counter()
        now = self.clock()
        self.last_broadcast = now
        jobs: dict[str, _Entry | None] = {}
        if keepalive:
            self.keepalive_seq += 1
        first_write = 0.0
        sent = 0
        failed = FailedSessions("job broadcast", self.clock)
        for proto in self.sessions:
            session = proto.session
            if session is None or not session.working:
                continue
            key = session.payout_key
            entry = jobs.get(key, False)
            if entry is False:
                entry = jobs[key] = self._entry(key, keepalive, now, clean)
            if entry is None:
                continue
            try:   # free unless it raises (3.11): one broken session must not stop the others' work
                data = session.push_job(entry[0], entry[1], entry[2], clean, entry[3], now, entry[4])
            except Exception:
                failed.add(proto)
                continue
            if data is not None:
                proto.transport.write(data)
                if not sent:
                    first_write = time.time()
                sent += 1
        if failed.connections:
            failed.close()
        finished = time.perf_counter()
        job = next((e[0] for e in jobs.values() if e), None)
        self.timings.record_fanout(finished - started, sent)
        if clean and job is not None and sent:
            self.timings.record_block_to_notify(max(0.0, first_write - job.created_at))

    def _entry(self, payout_key: str, keepalive: bool, now: float, clean: bool) -> _Entry | None:
        job = self.jobs.current_job(payout_key)
        if job is None:
            return None
        wire_id, ntime = job.job_id, job.ntime
        if keepalive:
            wire_id, ntime = f"{job.job_id}.k{self.keepalive_seq:x}", max(job.ntime, int(now))
        return job, wire_id, ntime, m.job_wire(job).notify(wire_id, ntime, clean), {}
