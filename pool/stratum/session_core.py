"""The state one Stratum connection's handlers share, and the three things they all use: the state move
(the table is session_states.py), the difficulty rule and the jobs sent to this connection.

The handlers are functions over this class, by concern: handshake.py (subscribe with resume,
authorize, configure, the suggestions), submit.py (judging a share, rejects and their budgets).
session.py's `Session` adds the input (bytes in, lines to handlers) and the server's side, and is
the one class the asyncio layer uses. The handler modules are this class's methods written as
functions, so they read and write its underscored fields as its own methods would; one class of
fields, declared once, keeps the slots flat for the fan-out, which touches every session.

Difficulty rule (stratum.md §8.4): `mining.set_difficulty` is written only immediately before a
`mining.notify` carrying a new job id; each job remembers the difficulty in force when it was sent to
this connection, and its shares are judged and credited at that difficulty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pool.chain.types import Job, JobSource
from pool.config.stratum import PortConfig, StratumConfig
from pool.stratum import messages as m
from pool.stratum.events import SessionEvent, ShareRecord
from pool.stratum.extranonce import ExtranonceAllocator
from pool.stratum.session_records import Counters, SentJob, WorkerStats, share_target
from pool.stratum.session_states import SUBSCRIBED_STATES, Move, State, next_state
from pool.stratum.vardiff import VarDiff, clamp_difficulty

__all__ = ["SessionCore"]


class SessionCore:
    """One connection's state, the state move, the difficulty rule and the jobs sent (see the module
    docstring); the handlers are in handshake.py and submit.py, the input and the server's side in
    session.py."""

    # Slots: a pool holds tens of thousands of these, and the fan-out touches every one.
    __slots__ = ("_acks", "_held", "_lenient_rolling", "_max_jobs", "_partial", "_pending_requests", "_pool_mask",
                 "_reissues", "_request_seq", "_resume_request", "_seen", "_tokens", "_tokens_at", "_window_invalid",
                 "_window_rejects", "_window_start", "_window_total", "allocator", "auth_failures", "bad_messages",
                 "ban_reason", "classify_firmware", "close_reason", "config", "connected_at", "counters", "country",
                 "difficulty", "events", "extranonce1", "extranonce2_size", "extranonce_subscribed", "farm_proxy",
                 "firmware", "fixed_difficulty", "hosting", "info", "jobs", "last_activity", "node",
                 "out", "payout_key", "peer", "pending_difficulty", "port", "reconnect_deadline", "rejected", "rejects",
                 "resume_lookups", "sent_jobs", "session_id", "solo", "state", "subdivision", "submits", "subscribed",
                 "suggested_floor", "target", "user_agent", "validate_account", "vardiff", "version_mask", "workers",
                 "working")

    def __init__(self, *, config: StratumConfig, port: PortConfig, jobs: JobSource,
                 allocator: ExtranonceAllocator, validate_account: Callable[[str], bool],
                 classify_firmware: Callable[[str], str], now: float, counters: Counters | None = None,
                 country: str = "ZZ", subdivision: str = "", hosting: bool = False, node: str = "",
                 solo: bool = False, peer: str = "", resume_lookups: bool = False) -> None:
        self.config = config
        self.port = port
        self.jobs = jobs
        self.allocator = allocator
        self.validate_account = validate_account
        self.classify_firmware = classify_firmware
        self.counters = counters if counters is not None else Counters()
        self.country, self.subdivision, self.hosting = country, subdivision, hosting
        self.node = node
        self.solo = solo
        self.peer = peer
        self.resume_lookups = resume_lookups     # a resume token is looked up in the shared directory
        self._resume_request: Any = None

        self.out: list[bytes] = []
        self.events: list[SessionEvent] = []
        # Accepted shares whose `true` reply sits in `out`: (record, or None once taken back; index in
        # out; request id; worker; the worker's best difficulty before it).
        self._acks: list[tuple[ShareRecord | None, int, Any, WorkerStats, float]] = []
        self.close_reason: str | None = None
        self.ban_reason: str | None = None

        self.connected_at = now
        self.last_activity = now
        self.state = State.CONNECTED
        # Mirrors of `state` (set only by _move), read on the hot paths: subscribed has an
        # extranonce1; working has had its first job and gets broadcasts.
        self.subscribed = False
        self.working = False
        self._partial = b""                  # an incomplete line so far
        self._held = b""                     # input held while the resume directory answers
        self.session_id = ""
        self.extranonce1 = b""
        self.extranonce2_size = config.extranonce2_size
        self.user_agent = ""
        self.firmware = "unknown"
        self.info: dict[str, str] = {}
        self.extranonce_subscribed = False
        self.version_mask: int | None = None   # negotiated by mining.configure
        self._pool_mask = config.version_mask_int
        self._lenient_rolling = config.version_rolling_without_configure == "pool_mask"
        self.workers: dict[str, WorkerStats] = {}
        self.payout_key = ""
        self.farm_proxy = False
        self.rejected: dict[str, int] = {}     # rejects that could not be tied to a worker

        self.difficulty = port.start_difficulty  # announced (in force for the next job sent)
        self.pending_difficulty: float | None = port.start_difficulty
        self.target = share_target(self.difficulty)
        self.fixed_difficulty: float | None = None
        self.suggested_floor = 0.0
        self.vardiff = VarDiff(port, now)

        self.sent_jobs: dict[str, SentJob] = {}
        self._max_jobs = config.max_jobs_per_connection
        self._seen: dict[str, set[bytes]] = {}
        self._reissues = 0
        self.reconnect_deadline = 0.0

        self._tokens = config.limits.submit_burst
        self._tokens_at = now
        self._window_start = now
        self._window_total = 0
        self._window_invalid = 0
        self._window_rejects = 0
        self.submits = 0                       # every mining.submit, and those rejected: the server
        self.rejects = 0                       # sums them per source address (reject_budget_per_ip)
        self.bad_messages = 0
        self.auth_failures = 0
        self._request_seq = 0
        self._pending_requests: dict[str, str] = {}

    def _bad_message(self, request_id: Any, text: str) -> None:
        self.out.append(m.error_reply(request_id, m.OTHER, text))
        self._violation()

    def _violation(self) -> None:
        """One more malformed or over-limit request (no reply of its own): disconnect past the budget."""
        self.bad_messages += 1
        if self.bad_messages >= self.config.limits.max_bad_messages:
            self.close_reason = "too many malformed messages"

    # ------------------------------------------------------------------------------------------------
    # difficulty and jobs

    def _current_target_difficulty(self) -> float:
        if self.fixed_difficulty is not None:
            return self.fixed_difficulty
        wanted = max(self.difficulty if self.pending_difficulty is None else self.pending_difficulty,
                     self.suggested_floor)
        if not self.working and self.suggested_floor:
            wanted = self.suggested_floor   # before any work, a suggestion is the starting point
        return clamp_difficulty(wanted, self.port, self.suggested_floor)

    def _set_difficulty(self, difficulty: float, now: float, *, reissue: bool) -> None:
        """Queue a new difficulty; it is announced right before the next job with a new id."""
        if difficulty == (self.pending_difficulty if self.pending_difficulty is not None else
                          self.difficulty):
            return
        self.pending_difficulty = difficulty if difficulty != self.difficulty else None
        self.vardiff.reset(now)
        if reissue and self.pending_difficulty is not None:
            self.reissue(now, clean=self.config.retarget_clean_jobs)

    def retarget(self, difficulty: float, now: float, *, reissue: bool = True) -> None:
        """Set this connection's difficulty (admin, tests); announced with the next job sent, which
        is the current work re-issued at once when `reissue`."""
        self._set_difficulty(clamp_difficulty(difficulty, self.port), now, reissue=reissue and self.working)

    def _move(self, move: Move, now: float) -> None:
        """The one place the state changes (the table is session_states.TRANSITIONS); entering
        WORKING sends the first job."""
        before = self.state
        after = self.state = next_state(before, move)
        self.subscribed = after in SUBSCRIBED_STATES
        self.working = after is State.WORKING
        if self.working and before is not State.WORKING:
            self._start_work(now)

    def halt(self, now: float) -> None:
        """No more work for this session (the server hit a bug in it and is closing the connection)."""
        if self.working:
            self._move(Move.HALT, now)

    def _start_work(self, now: float) -> None:
        if self.pending_difficulty is None:
            # The first notify always follows a set_difficulty (the default would otherwise be 1).
            self.pending_difficulty = self.difficulty
        self.vardiff.reset(now)
        job = self.jobs.current_job(self.payout_key)
        if job is not None:
            self._send_job(job, job.job_id, job.ntime, True, None, now)

    def reissue(self, now: float, *, clean: bool) -> bool:
        """Send the current work again under a connection-unique job id (after a difficulty change)."""
        job = self.jobs.current_job(self.payout_key)
        if job is None or not self.working:
            return False
        self._reissues += 1
        wire_id = f"{job.job_id}.{self._reissues:x}"
        self._send_job(job, wire_id, max(job.ntime, int(now)), clean, None, now)
        return True

    def push_job(self, job: Job, wire_id: str, ntime: int, clean: bool, notify: bytes, now: float,
                 shared: dict[float, SentJob]) -> bytes | None:
        """Broadcast path: the bytes to write for a job every connection gets (None: not ready).

        `shared` is the broadcast's SentJob per difficulty (connections at one difficulty share one).
        Runs once per connection per new job, so _remember is inlined here."""
        if not self.working or job.extranonce_size != 4 + self.extranonce2_size:
            return None
        data = notify
        pending = self.pending_difficulty
        if pending is not None:
            data = m.set_difficulty(pending) + notify
            self.difficulty = pending
            self.target = share_target(pending)
            self.pending_difficulty = None
        sent = shared.get(self.difficulty)
        if sent is None:
            sent = shared[self.difficulty] = SentJob(job, self.difficulty, self.target, ntime)
        jobs = self.sent_jobs
        jobs[wire_id] = sent
        if len(jobs) > self._max_jobs:
            del jobs[next(iter(jobs))]
        if clean and self._seen:
            self._forget_seen_except(job.job_id)
        return data

    def _send_job(self, job: Job, wire_id: str, ntime: int, clean: bool, notify: bytes | None,
                  now: float) -> None:
        if job.extranonce_size != 4 + self.extranonce2_size:
            return   # a job cut for another extranonce layout cannot be judged here
        if self.pending_difficulty is not None:
            self.out.append(m.set_difficulty(self.pending_difficulty))
            self.difficulty = self.pending_difficulty
            self.target = share_target(self.difficulty)
            self.pending_difficulty = None
        self.out.append(notify or m.job_wire(job).notify(wire_id, ntime, clean))
        self._remember(wire_id, SentJob(job, self.difficulty, self.target, ntime), clean)

    def _remember(self, wire_id: str, sent: SentJob, clean: bool) -> None:
        jobs = self.sent_jobs
        jobs[wire_id] = sent
        if len(jobs) > self._max_jobs:
            del jobs[next(iter(jobs))]
        if clean and self._seen:
            self._forget_seen_except(sent.job.job_id)

    def _forget_seen_except(self, current_job_id: str) -> None:
        # Old-tip shares are rejected as stale before the duplicate check: their sets can go.
        for job_id in [key for key in self._seen if key != current_job_id]:
            del self._seen[job_id]
