"""One Stratum V1 connection as a sans-IO state machine (h11 style).

Bytes go in with `receive_data(data, now)` (split into lines here, each at most
limits.max_line_bytes; `receive_line` takes one); bytes to write collect in `out`, and events
(accepted `ShareRecord`s, `BlockCandidate`s, a `ResumeLookup`) in `events`. No sockets, no Redis, no
clock reads. The asyncio layer (connection.py) drains both after every read. A resume that needs the
shared directory holds the input until `resume_answer`.

Where each part is:
- session_states.py: the states and their legal moves, one table;
- session_core.py: the fields, the state move, the difficulty rule and the jobs sent;
- handshake.py: subscribe, authorize, configure and the other client methods (the `METHODS` table);
- submit.py: mining.submit, the hot path, with the reject budgets;
- this file: the input (lines, limits, JSON depth, replies to our own requests) and what the server
  asks of a session (housekeeping, controls, snapshot, parking on close).
"""

from __future__ import annotations

import msgspec

from pool.json_depth import deeper_than
from pool.stratum import messages as m
from pool.stratum.handshake import METHODS, InputPaused, resume_answer
from pool.stratum.resume import ParkedSession
from pool.stratum.session_core import SessionCore
from pool.stratum.session_records import SessionSnapshot
from pool.stratum.session_states import PAUSED_STATES, Move
from pool.stratum.submit import share_not_recorded, submit

__all__ = ["IGNORED_METHODS", "InputPaused", "Session"]

_envelope = msgspec.json.Decoder(m.Envelope)

# Sent without a reply: a reply to these is counted as a share by cgminer/bmminer (stratum.md §3.1).
IGNORED_METHODS = frozenset({"mining.multi_version", "mining.capabilities"})

_CONTAINERS = (list, dict)


class Session(SessionCore):
    """The session the asyncio layer holds: SessionCore's fields with the input and the server's side."""

    __slots__ = ()

    resume_answer = resume_answer            # the directory's answer to a ResumeLookup (handshake.py)
    share_not_recorded = share_not_recorded  # the consumer could not make a share durable (submit.py)

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
        except m.DECODE_ERRORS as exc:
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
            submit(self, msg, now)
            return
        if self._too_deep(line):
            return
        if method is None:
            self._client_reply(msg)
            return
        handler = METHODS.get(method)
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
