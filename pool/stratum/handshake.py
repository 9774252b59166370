"""The handshake half of a Session (subscribe with resume, authorize, configure, suggestions): a
mixin so session.py keeps the state and the share path. Sans-IO like the rest of the session.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from pool.stratum import messages as m
from pool.stratum.credentials import parse_password, valid_worker_name
from pool.stratum.extranonce import ExtranonceAllocator, ExtranonceExhausted
from pool.stratum.negotiate import UNCHANGED, negotiate, suggested_difficulty
from pool.stratum.resume import ParkedSession, ResumeLookup
from pool.stratum.session_records import WorkerStats
from pool.stratum.session_states import Move
from pool.stratum.vardiff import clamp_difficulty, client_floor

if TYPE_CHECKING:
    from pool.config.stratum import PortConfig, StratumConfig
    from pool.stratum.events import SessionEvent

_authorize_params = msgspec.json.Decoder(m.AuthorizeParams)
_configure_params = msgspec.json.Decoder(m.ConfigureParams)
_list_params = msgspec.json.Decoder(list[Any])
_DecodeErrors = (msgspec.DecodeError, msgspec.ValidationError)

MAX_TOKEN_LENGTH = 32


class InputPaused(Exception):
    """Raised by Session.receive_line when the line just consumed needs an answer from outside (a
    ResumeLookup is in `events`): feed no further line until `resume_answer` was called.
    Session.receive_data catches it and holds the rest of the input itself."""


def plausible_token(token: str) -> bool:
    """Worth a directory lookup: short and alphanumeric (ours are 8 hex digits)."""
    return len(token) <= MAX_TOKEN_LENGTH and token.isascii() and token.isalnum()


class Handshake:
    __slots__ = ()
    # Session state the handshake reads and writes (defined in Session.__init__).
    config: StratumConfig
    port: PortConfig
    allocator: ExtranonceAllocator
    validate_account: Callable[[str], bool]
    classify_firmware: Callable[[str], str]
    out: list[bytes]
    events: list[SessionEvent]
    close_reason: str | None
    subscribed: bool
    working: bool
    session_id: str
    extranonce1: bytes
    extranonce2_size: int
    user_agent: str
    firmware: str
    info: dict[str, str]
    extranonce_subscribed: bool
    version_mask: int | None
    _pool_mask: int
    workers: dict[str, WorkerStats]
    payout_key: str
    farm_proxy: bool
    solo: bool
    suggested_floor: float
    fixed_difficulty: float | None
    auth_failures: int
    resume_lookups: bool
    _resume_request: Any

    def _current_target_difficulty(self) -> float:
        raise NotImplementedError

    def _set_difficulty(self, difficulty: float, now: float, *, reissue: bool) -> None:
        raise NotImplementedError

    def _move(self, move: Move, now: float) -> None:
        raise NotImplementedError

    def _bad_message(self, request_id: Any, text: str) -> None:
        raise NotImplementedError

    def _violation(self) -> None:
        raise NotImplementedError


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

