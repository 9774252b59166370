"""One Stratum V1 connection as a sans-IO state machine (h11 style).

Bytes go in with `receive_data(data, now)` (split into lines here, each at most
limits.max_line_bytes; `receive_line` takes one); bytes to write collect in `out`, and events
(accepted `ShareRecord`s, `BlockCandidate`s, a `ResumeLookup`) in `events`. No sockets, no Redis, no
clock reads. The asyncio layer (connection.py) drains both after every read. The states and their
moves are one table in session_states.py. A resume that needs the shared directory holds the input
until `resume_answer`.

One class on purpose (over 500 lines): every handler reads and writes the same connection state, and
the handshake half kept in a mixin had to re-declare 28 of its fields (issue 10).

Difficulty rule (stratum.md §8.4): `mining.set_difficulty` is written only immediately before a
`mining.notify` carrying a new job id; each job remembers the difficulty in force when it was sent to
this connection, and its shares are judged and credited at that difficulty.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec

from pool.chain.types import BlockCandidate, Job, JobSource
from pool.config.stratum import PortConfig, StratumConfig
from pool.json_depth import deeper_than
from pool.native.work import DIFF1_TARGET
from pool.stratum import messages as m
from pool.stratum.credentials import parse_password, valid_worker_name
from pool.stratum.events import SessionEvent, ShareRecord
from pool.stratum.extranonce import ExtranonceAllocator, ExtranonceExhausted
from pool.stratum.judge import judge, parse_submit
from pool.stratum.negotiate import UNCHANGED, negotiate, suggested_difficulty
from pool.stratum.resume import ParkedSession, ResumeLookup
from pool.stratum.session_records import Counters, SentJob, SessionSnapshot, WorkerStats, share_target
from pool.stratum.session_states import PAUSED_STATES, SUBSCRIBED_STATES, Move, State, next_state
from pool.stratum.vardiff import VarDiff, clamp_difficulty, client_floor

__all__ = ["IGNORED_METHODS", "InputPaused", "Session"]

_envelope = msgspec.json.Decoder(m.Envelope)
_submit_params = msgspec.json.Decoder(m.SubmitParams)
_authorize_params = msgspec.json.Decoder(m.AuthorizeParams)
_configure_params = msgspec.json.Decoder(m.ConfigureParams)
_list_params = msgspec.json.Decoder(list[Any])
_DecodeErrors = (msgspec.DecodeError, msgspec.ValidationError)

MAX_TOKEN_LENGTH = 32

# Sent without a reply: a reply to these is counted as a share by cgminer/bmminer (stratum.md §3.1).
IGNORED_METHODS = frozenset({"mining.multi_version", "mining.capabilities"})


_CONTAINERS = (list, dict)


class InputPaused(Exception):
    """Raised by Session.receive_line when the line just consumed needs an answer from outside (a
    ResumeLookup is in `events`): feed no further line until `resume_answer` was called.
    Session.receive_data catches it and holds the rest of the input itself."""


def plausible_token(token: str) -> bool:
    """Worth a directory lookup: short and alphanumeric (ours are 8 hex digits)."""
    return len(token) <= MAX_TOKEN_LENGTH and token.isascii() and token.isalnum()


class Session:
    # Slots: a pool holds tens of thousands of these, and the fan-out touches every one.
    __slots__ = ("_acks", "_held", "_lenient_rolling", "_max_jobs", "_partial", "_pending_requests", "_pool_mask",
                 "_reissues", "_request_seq", "_resume_request", "_seen", "_tokens", "_tokens_at", "_window_invalid",
                 "_window_rejects", "_window_start", "_window_total", "allocator", "auth_failures", "bad_messages",
                 "ban_reason", "classify_firmware", "close_reason", "config", "connected_at", "counters", "country",
                 "difficulty", "events", "extranonce1", "extranonce2_size", "extranonce_subscribed", "farm_proxy",
                 "firmware", "fixed_difficulty", "hosting", "info", "jobs", "last_activity", "last_notify_at", "node",
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
        self.last_notify_at = 0.0
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

    # ------------------------------------------------------------------------------------------------
    # input

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the connection: each complete line is handled in order, an incomplete one waits
        for the rest. A line (or an unfinished one) longer than limits.max_line_bytes closes the
        session. While a resume look-up is pending, input is held and handled by the next call after
        `resume_answer`; nothing is read once the session asked to close."""
        if self.state in PAUSED_STATES:
            self._held += data
            return
        if self._held:
            data, self._held = self._held + data, b""
        if self.close_reason is not None:
            return
        if self._partial:
            data = self._partial + data
        limit = self.config.limits.max_line_bytes
        lines = data.split(b"\n")
        self._partial = tail = lines.pop()
        remaining = iter(lines)
        try:
            for line in remaining:
                if len(line) > limit:
                    self._line_too_long()
                    return
                if len(line) > 1:
                    self.receive_line(line, now)
                    if self.close_reason:
                        return
        except InputPaused:
            # The rest waits, in order, for the directory (authorize often comes in the same packet).
            self._held = b"".join(line + b"\n" for line in remaining) + self._partial
            self._partial = b""
            return
        if len(tail) > limit:
            # After the complete lines before it: how TCP cut the bytes must not change the answers.
            self._partial = b""
            self._line_too_long()

    def _line_too_long(self) -> None:
        self.out.append(m.error_reply(None, m.OTHER, "Line too long"))
        self.close_reason = "line too long"

    def receive_line(self, line: bytes, now: float) -> None:
        self.last_activity = now
        try:
            msg = _envelope.decode(line)
        except _DecodeErrors as exc:
            self._bad_message(None, f"Invalid JSON-RPC: {str(exc)[:60]}")
            return
        except RecursionError:     # ~1000 deep, past any allowed max_json_depth (<= 512)
            depth = self.config.limits.max_json_depth
            self._bad_message(None, f"Invalid JSON-RPC: nested deeper than {depth} levels")
            return
        method = msg.method
        if method == "mining.submit":
            # Submit params decode into strings (deep ones fail); only a container id needs a scan.
            if type(msg.id) in _CONTAINERS and self._too_deep(line):
                return
            self._submit(msg, now)
            return
        if self._too_deep(line):
            return
        if method is None:
            self._client_reply(msg)
            return
        handler = _HANDLERS.get(method)
        if handler is not None:
            handler(self, msg, now)
        elif method == "mining.term":
            self.close_reason = "client sent mining.term"
        elif method not in IGNORED_METHODS and msg.id is not None:
            self.out.append(m.error_reply(msg.id, m.OTHER, "Unsupported method"))

    def _too_deep(self, line: bytes) -> bool:
        """Nested deeper than limits.max_json_depth (answered as a bad message). msgspec's own
        RecursionError (~1000 deep) is caught at decode; this holds the configured, lower limit."""
        depth = self.config.limits.max_json_depth
        if not deeper_than(line, depth):
            return False
        self._bad_message(None, f"Invalid JSON-RPC: nested deeper than {depth} levels")
        return True

    def _bad_message(self, request_id: Any, text: str) -> None:
        self.out.append(m.error_reply(request_id, m.OTHER, text))
        self._violation()

    def _violation(self) -> None:
        """One more malformed or over-limit request (no reply of its own): disconnect past the budget."""
        self.bad_messages += 1
        if self.bad_messages >= self.config.limits.max_bad_messages:
            self.close_reason = "too many malformed messages"

    def _client_reply(self, msg: m.Envelope) -> None:
        key = msg.id if type(msg.id) is str else None
        kind = self._pending_requests.pop(key, None) if key is not None else None
        if kind == "client.get_version" and type(msg.result) is str:
            agent_limit = self.config.limits.max_user_agent_length
            self.info["reported-version"] = msg.result[:agent_limit]
            if not self.user_agent:
                self.user_agent = msg.result[:agent_limit]
                self.firmware = self.classify_firmware(self.user_agent)

    # ------------------------------------------------------------------------------------------------
    # handshake: subscribe (with resume), authorize, configure, suggestions

    def _subscribe(self, msg: m.Envelope, now: float) -> None:
        try:
            params = _list_params.decode(msg.params)
        except _DecodeErrors:
            params = []
        if not self.subscribed:
            if params and type(params[0]) is str:
                agent_limit = self.config.limits.max_user_agent_length
                if len(params[0]) > agent_limit:
                    self._violation()
                self.user_agent = params[0][:agent_limit]
            resume = params[1] if len(params) > 1 and type(params[1]) is str else None
            if resume and self.resume_lookups and plausible_token(resume):
                # Only the directory knows whether another process parked (or already gave out)
                # this session: stop here until the asyncio layer brings its answer.
                self._resume_request = msg.id
                self.events.append(ResumeLookup(resume))
                self._move(Move.LOOKUP, now)
                raise InputPaused(resume)
            extranonce1 = self.allocator.resume(resume, now) if resume else None
            token = resume if extranonce1 is not None else ""
            if not self._subscribed_with(msg.id, extranonce1, token, now):
                return
        self._subscribe_reply(msg.id, now)

    def resume_answer(self, parked: ParkedSession | None, now: float) -> None:
        """The directory's answer to the pending ResumeLookup (None: unknown, taken, timed out or
        unreachable): adopt the claimed extranonce1 or allocate a fresh one, and reply to subscribe."""
        request_id, self._resume_request = self._resume_request, None
        self._move(Move.RESUMED, now)
        if parked is not None:
            self.allocator.adopt(parked.extranonce1, parked.token)
            extranonce1: bytes | None = parked.extranonce1
            token = parked.token
        else:
            extranonce1, token = None, ""
        if self._subscribed_with(request_id, extranonce1, token, now):
            self._subscribe_reply(request_id, now)

    def _subscribed_with(self, request_id: Any, extranonce1: bytes | None, token: str, now: float) -> bool:
        if extranonce1 is None:
            try:
                extranonce1, token = self.allocator.allocate(now)
            except ExtranonceExhausted:
                self.out.append(m.error_reply(request_id, m.OTHER, "Server full"))
                self.close_reason = "extranonce space exhausted"
                return False
        self.extranonce1, self.session_id = extranonce1, token
        self.firmware = self.classify_firmware(self.user_agent)
        floor = self.config.min_difficulty_by_firmware.get(self.firmware)
        if floor:
            self.suggested_floor = max(self.suggested_floor, floor)
            self._set_difficulty(self._current_target_difficulty(), now, reissue=False)
        return True

    def _subscribe_reply(self, request_id: Any, now: float) -> None:
        result = m.SubscribeResult(
            [("mining.set_difficulty", self.session_id), ("mining.notify", self.session_id)],
            self.extranonce1.hex(), self.extranonce2_size)
        self.out.append(m.reply(request_id, result))
        self._move(Move.SUBSCRIBE, now)

    def _authorize(self, msg: m.Envelope, now: float) -> None:
        try:
            params = _authorize_params.decode(msg.params)
        except _DecodeErrors:
            self._bad_message(msg.id, "Invalid authorize params")
            return
        name = params.username.strip()
        account = name.split(".", 1)[0]
        limits = self.config.limits
        if name in self.workers:
            self.out.append(m.true_reply(msg.id))
            return
        if len(self.workers) >= limits.max_workers_per_connection:
            self.out.append(m.error_reply(msg.id, m.OTHER, "Too many workers"))
            self._violation()
            return
        options = parse_password(params.password)
        if options.invalid:
            self._bad_message(msg.id, f"Invalid password option {options.invalid}: not a finite number")
            return
        if (not valid_worker_name(name, limits.max_worker_name_length) or not account
                or not self.validate_account(account)):
            self.auth_failures += 1
            self.out.append(m.error_reply(msg.id, m.UNAUTHORIZED, "Unauthorized worker"))
            if self.auth_failures >= limits.max_auth_failures:
                self.close_reason = "too many failed authorizations"
            return
        self.workers[name] = WorkerStats(name, account, now)
        if len(self.workers) == 1 and self.solo:
            self.payout_key = account
        if len(self.workers) >= limits.farm_proxy_workers:
            self.farm_proxy = True
        self.out.append(m.true_reply(msg.id))
        if options.min_difficulty is not None:
            self.suggested_floor = max(self.suggested_floor, client_floor(options.min_difficulty, self.port))
        if options.fixed_difficulty is not None:
            self.fixed_difficulty = clamp_difficulty(options.fixed_difficulty, self.port)
        if options.fixed_difficulty is not None or options.min_difficulty is not None:
            self._set_difficulty(self._current_target_difficulty(), now, reissue=self.working)
        self._move(Move.AUTHORIZE, now)

    def _configure(self, msg: m.Envelope, now: float) -> None:
        try:
            params = _configure_params.decode(msg.params)
        except _DecodeErrors:
            # Still answered (cgminer/bmminer read exactly one line after configure).
            self.out.append(m.error_reply(msg.id, m.OTHER, "Invalid configure params"))
            return
        limits = self.config.limits
        outcome = negotiate(params.extensions, params.options, self._pool_mask,
                            max_info_keys=limits.max_info_keys, max_info_length=limits.max_info_length)
        if outcome.version_mask != UNCHANGED:
            self.version_mask = outcome.version_mask
        self.extranonce_subscribed |= outcome.subscribe_extranonce
        info, overflow = self.info, outcome.info_overflow
        for key, value in outcome.info.items():
            if key in info or len(info) < limits.max_info_keys:
                info[key] = value
            else:
                overflow = True
        # The reply is the next line written; a difficulty change follows it (with a new job).
        self.out.append(m.reply(msg.id, outcome.result))
        if overflow:
            self._violation()
        if outcome.minimum_difficulty is not None:
            self.suggested_floor = client_floor(outcome.minimum_difficulty, self.port)
            self._set_difficulty(self._current_target_difficulty(), now, reissue=self.working)

    def _extranonce_subscribe(self, msg: m.Envelope, now: float) -> None:
        self.extranonce_subscribed = True
        if msg.id is not None:
            self.out.append(m.true_reply(msg.id))

    def _suggest_difficulty(self, msg: m.Envelope, now: float) -> None:
        self._suggest(msg, now, target=False)

    def _suggest_target(self, msg: m.Envelope, now: float) -> None:
        self._suggest(msg, now, target=True)

    def _suggest(self, msg: m.Envelope, now: float, *, target: bool) -> None:
        try:
            params = _list_params.decode(msg.params)
        except _DecodeErrors:
            params = []
        value = suggested_difficulty(params, target=target)
        if value is not None and not math.isfinite(value):
            # Only a hostile client sends these; an honest one never sees this error.
            self._bad_message(msg.id, "Suggested difficulty must be a finite number")
            return
        # Never answered false: cgminer counts any reply to it as a share (stratum.md §3.1).
        if msg.id is not None:
            self.out.append(m.true_reply(msg.id))
        if value is not None:
            self.suggested_floor = client_floor(value, self.port)
            self._set_difficulty(self._current_target_difficulty(), now, reissue=self.working)

    def _get_transactions(self, msg: m.Envelope, now: float) -> None:
        if msg.id is not None:
            self.out.append(m.reply(msg.id, []))

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
        self.last_notify_at = now
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
        self.last_notify_at = now

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

    # ------------------------------------------------------------------------------------------------
    # submit

    def _submit(self, msg: m.Envelope, now: float) -> None:
        rid = msg.id
        self.submits += 1
        limits = self.config.limits
        tokens = self._tokens
        if now > self._tokens_at:       # a clock stepping back must not drain the bucket
            tokens += (now - self._tokens_at) * limits.submits_per_second
            if tokens > limits.submit_burst:
                tokens = limits.submit_burst
            self._tokens_at = now
        if tokens < 1.0:
            self._tokens = tokens
            self._reject(rid, m.RATE_LIMITED, None, now)
            return
        self._tokens = tokens - 1.0
        try:
            p = _submit_params.decode(msg.params)
        except _DecodeErrors:
            self._reject(rid, m.MALFORMED, None, now)
            return
        if not self.subscribed:
            self._reject(rid, m.NOT_SUBSCRIBED_YET, None, now)
            return
        worker = self.workers.get(p.worker)
        if worker is None:
            self._reject(rid, m.UNAUTHORIZED_WORKER, None, now)
            return
        sent = self.sent_jobs.get(p.job_id)
        if sent is None:
            self._reject(rid, m.UNKNOWN_JOB, worker, now)
            return
        mask = self.version_mask
        if mask is None and self._lenient_rolling:
            mask = self._pool_mask
        fields = parse_submit(p.extranonce2, p.ntime, p.nonce, p.version_bits, self.extranonce2_size, mask)
        if type(fields) is m.Reject:
            self._reject(rid, fields, worker, now)
            return
        job = sent.job
        jobs = self.jobs
        if jobs.lookup(job.job_id) is None:
            self._reject(rid, m.UNKNOWN_JOB, worker, now)
            return
        seen = self._seen.get(job.job_id)
        if seen is None:
            seen = self._seen[job.job_id] = set()
            if len(self._seen) > self.config.max_jobs_per_connection:
                del self._seen[next(iter(self._seen))]
        ntime_high = sent.ntime + self.config.ntime_forward_seconds
        future = int(now) + self.config.max_future_seconds
        if future < ntime_high:
            ntime_high = future
        reject, header_hash, is_block = judge(
            job.prepared, self.extranonce1, fields, mask or 0, sent.target,
            stale=jobs.is_stale(job), ntime_low=job.ntime, ntime_high=ntime_high, seen=seen)
        block_hash = ""
        if is_block:
            block_hash = header_hash[::-1].hex()
            version = (job.version & ~(mask or 0)) | (fields.version_bits & (mask or 0))
            self.events.append(BlockCandidate(
                job_id=job.job_id, template_id=job.template_id, extranonce1=self.extranonce1,
                extranonce2=fields.extranonce2, ntime=fields.ntime, nonce=fields.nonce, version=version,
                header_hash=header_hash, height=job.height, worker=worker.name, account=worker.account,
                found_at=now))
            worker.blocks += 1
            self.counters.blocks += 1
        if reject is not None:
            self._reject(rid, reject, worker, now)
            return
        difficulty = sent.difficulty
        value = int.from_bytes(header_hash, "little")
        reached = DIFF1_TARGET / value if value else float("inf")
        best_before = worker.best_difficulty
        if reached > best_before:
            worker.best_difficulty = reached
        record = ShareRecord(
            timestamp=now, account=worker.account, worker=worker.name, difficulty=difficulty,
            share_difficulty=reached, height=job.height,
            country=self.country, subdivision=self.subdivision, hosting=self.hosting,
            farm_proxy=self.farm_proxy, firmware=self.firmware, node=self.node, block_hash=block_hash)
        self.events.append(record)
        worker.accepted += 1
        worker.accepted_difficulty += difficulty
        worker.last_share_at = now
        counters = self.counters
        counters.accepted += 1
        counters.accepted_difficulty += difficulty
        self._window_total += 1
        out = self.out
        if not out:
            self._acks.clear()       # positions in an `out` already written are meaningless
        self._acks.append((record, len(out), rid, worker, best_before))
        out.append(m.true_reply(rid))
        if self.fixed_difficulty is None and self.port.vardiff:
            current = self.difficulty if self.pending_difficulty is None else self.pending_difficulty
            new = self.vardiff.on_share(difficulty, current, self.suggested_floor, now)
            if new is not None:
                self._set_difficulty(new, now, reissue=True)

    def share_not_recorded(self, record: ShareRecord) -> bool:
        """The consumer could not make `record` durable (its journal write raised): its `true` reply,
        still in `out`, becomes a reject, the share is counted as rejected ("not_recorded"), not
        accepted, and is nobody's best share. False if the record is not one of the
        acknowledgements waiting in `out` (or was already taken back)."""
        acks = self._acks
        found = next((i for i, ack in enumerate(acks) if ack[0] is record), None)
        if found is None:
            return False
        _, index, rid, worker, _ = acks[found]
        acks[found] = (None, index, rid, worker, acks[found][4])     # taken back; its best_before stays
        self.out[index] = m.NOT_RECORDED.reply(rid)
        worker.accepted -= 1
        worker.accepted_difficulty -= record.difficulty
        counters = self.counters
        counters.accepted -= 1
        counters.accepted_difficulty -= record.difficulty
        self._count_reject(m.NOT_RECORDED.key, worker)
        # The best is what the worker had before this read's first share, or a share still kept.
        mine = [ack for ack in acks if ack[3] is worker]
        worker.best_difficulty = max([mine[0][4]] + [ack[0].share_difficulty for ack in mine if ack[0] is not None])
        return True

    def _count_reject(self, key: str, worker: WorkerStats | None) -> None:
        book = worker.rejected if worker is not None else self.rejected
        book[key] = book.get(key, 0) + 1
        rejected = self.counters.rejected
        rejected[key] = rejected.get(key, 0) + 1

    def _reject(self, rid: Any, reject: m.Reject, worker: WorkerStats | None, now: float) -> None:
        self.out.append(reject.reply(rid))
        key = reject.key
        self._count_reject(key, worker)
        self.rejects += 1
        limits = self.config.limits
        if now - self._window_start > limits.ban_window_seconds:
            self._window_start = now
            self._window_total = 0
            self._window_invalid = 0
            self._window_rejects = 0
        self._window_total += 1
        self._window_rejects += 1
        if (self._window_rejects >= limits.reject_budget_per_connection
                and self._window_rejects >= limits.reject_budget_ratio * self._window_total):
            self.ban_reason = self.close_reason = "reject budget exceeded"
            return
        if key in m.HONEST_REJECTS:
            return
        self._window_invalid += 1
        if (self._window_invalid >= limits.ban_invalid_shares
                and self._window_invalid >= limits.ban_invalid_ratio * self._window_total):
            self.ban_reason = self.close_reason = "flood of invalid shares"

    # ------------------------------------------------------------------------------------------------
    # server-initiated

    def tick(self, now: float) -> None:
        """Periodic housekeeping: authorize timeout, idle timeout, idle vardiff, reconnect grace."""
        limits = self.config.limits
        if not self.workers and now - self.connected_at > limits.authorize_timeout:
            self.close_reason = "not authorized in time"
        elif now - self.last_activity > limits.idle_timeout:
            self.close_reason = "idle"
        elif self.reconnect_deadline and now >= self.reconnect_deadline:
            self.close_reason = "reconnect requested"
        elif self.working and self.fixed_difficulty is None and self.port.vardiff:
            new = self.vardiff.on_idle(self.difficulty, self.suggested_floor, now)
            if new is not None:
                self._set_difficulty(new, now, reissue=True)

    def set_extranonce(self, extranonce1: bytes, now: float) -> bool:
        """Move the connection to a new extranonce1 (only for miners that subscribed to it)."""
        if not self.extranonce_subscribed or not self.subscribed:
            return False
        self.extranonce1 = extranonce1
        self.out.append(m.set_extranonce(extranonce1, self.extranonce2_size))
        self.sent_jobs.clear()    # old jobs were for the old extranonce1
        self._seen.clear()
        self.reissue(now, clean=True)
        return True

    def send_version_mask(self, mask: int) -> bool:
        if self.version_mask is None:
            return False
        self.version_mask = mask & self.config.version_mask_int
        self.out.append(m.set_version_mask(self.version_mask))
        return True

    def request_reconnect(self, now: float, host: str | None = None, port: int | None = None,
                          wait: int = 0, grace: float = 10.0) -> None:
        self.out.append(m.reconnect(host, port, wait))
        self.reconnect_deadline = now + grace

    def show_message(self, text: str) -> bool:
        agent = self.user_agent.lower()
        if not any(fragment in agent for fragment in self.config.show_message_user_agents):
            return False
        self.out.append(m.show_message(text[:512]))
        return True

    def request_version(self) -> None:
        self._request_seq += 1
        key = f"gv{self._request_seq}"
        pending = self._pending_requests
        if len(pending) >= self.config.limits.max_pending_requests:
            del pending[next(iter(pending))]     # a client that never answers keeps only the newest
        pending[key] = "client.get_version"
        self.out.append(m.request(key, "client.get_version", []))

    def snapshot(self) -> SessionSnapshot:
        return SessionSnapshot(
            peer=self.peer, port=self.port.port, session_id=self.session_id, subscribed=self.subscribed,
            working=self.working, state=self.state.value, user_agent=self.user_agent, firmware=self.firmware,
            workers=list(self.workers), difficulty=self.difficulty, pending_difficulty=self.pending_difficulty,
            suggested_floor=self.suggested_floor, fixed_difficulty=self.fixed_difficulty,
            bad_messages=self.bad_messages, auth_failures=self.auth_failures, info=dict(self.info),
            pending_requests=len(self._pending_requests), connected_at=self.connected_at,
            last_activity=self.last_activity)

    def connection_lost(self, now: float) -> ParkedSession | None:
        """Park the extranonce1 for a resume; returns the park to publish (None: nothing parked)."""
        parked = None
        if self.subscribed and self.session_id:
            if self.workers:    # resume state only for a miner that authorized (subscribe churn is free)
                expires = self.allocator.park(self.extranonce1, self.session_id, now,
                                              limit=self.config.limits.max_parked_sessions)
                if expires is not None:
                    parked = ParkedSession(self.session_id, self.extranonce1, expires)
            else:
                self.allocator.release(self.extranonce1)
        self._move(Move.LOST, now)
        return parked


_HANDLERS: dict[str, Callable[[Session, m.Envelope, float], None]] = {
    "mining.subscribe": Session._subscribe,
    "mining.authorize": Session._authorize,
    "mining.configure": Session._configure,
    "mining.extranonce.subscribe": Session._extranonce_subscribe,
    "mining.suggest_difficulty": Session._suggest_difficulty,
    "mining.suggest_target": Session._suggest_target,
    "mining.get_transactions": Session._get_transactions,
}
