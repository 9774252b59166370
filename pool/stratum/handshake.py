"""The handshake's Stratum methods (stratum.md §3): subscribe (with a resume token), authorize,
configure (version rolling, minimum difficulty, subscribe-extranonce, info), extranonce.subscribe,
suggest_difficulty / suggest_target and get_transactions.

Each is a function of the session (a SessionCore) and the decoded envelope; `METHODS` maps the wire
name to it and is what Session.receive_line looks up. A new client method is one function here and one
row in METHODS (mining.submit, the hot path, is submit.py's, called directly).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec

from pool.stratum import messages as m
from pool.stratum.credentials import parse_password, valid_worker_name
from pool.stratum.extranonce import ExtranonceExhausted
from pool.stratum.negotiate import UNCHANGED, negotiate, suggested_difficulty
from pool.stratum.resume import ParkedSession, ResumeLookup
from pool.stratum.session_core import SessionCore
from pool.stratum.session_records import WorkerStats
from pool.stratum.session_states import Move
from pool.stratum.vardiff import clamp_difficulty, client_floor

__all__ = ["METHODS", "InputPaused", "plausible_token", "resume_answer"]

_authorize_params = msgspec.json.Decoder(m.AuthorizeParams)
_configure_params = msgspec.json.Decoder(m.ConfigureParams)
_list_params = msgspec.json.Decoder(list[Any])

MAX_TOKEN_LENGTH = 32


class InputPaused(Exception):
    """Raised by Session.receive_line when the line just consumed needs an answer from outside (a
    ResumeLookup is in `events`): feed no further line until `resume_answer` was called.
    Session.receive_data catches it and holds the rest of the input itself."""


def plausible_token(token: str) -> bool:
    """Worth a directory lookup: short and alphanumeric (ours are 8 hex digits)."""
    return len(token) <= MAX_TOKEN_LENGTH and token.isascii() and token.isalnum()


def subscribe(session: SessionCore, msg: m.Envelope, now: float) -> None:
    try:
        params = _list_params.decode(msg.params)
    except m.DECODE_ERRORS:
        params = []
    if not session.subscribed:
        if params and type(params[0]) is str:
            agent_limit = session.config.limits.max_user_agent_length
            if len(params[0]) > agent_limit:
                session._violation()
            session.user_agent = params[0][:agent_limit]
        resume = params[1] if len(params) > 1 and type(params[1]) is str else None
        if resume and session.resume_lookups and plausible_token(resume):
            # Only the directory knows whether another process parked (or already gave out)
            # this session: stop here until the asyncio layer brings its answer.
            session._resume_request = msg.id
            session.events.append(ResumeLookup(resume))
            session._move(Move.LOOKUP, now)
            raise InputPaused(resume)
        extranonce1 = session.allocator.resume(resume, now) if resume else None
        token = resume if extranonce1 is not None else ""
        if not _subscribed_with(session, msg.id, extranonce1, token, now):
            return
    _subscribe_reply(session, msg.id, now)


def resume_answer(session: SessionCore, parked: ParkedSession | None, now: float) -> None:
    """The directory's answer to the pending ResumeLookup (None: unknown, taken, timed out or
    unreachable): adopt the claimed extranonce1 or allocate a fresh one, and reply to subscribe."""
    request_id, session._resume_request = session._resume_request, None
    session._move(Move.RESUMED, now)
    if parked is not None:
        session.allocator.adopt(parked.extranonce1, parked.token)
        extranonce1: bytes | None = parked.extranonce1
        token = parked.token
    else:
        extranonce1, token = None, ""
    if _subscribed_with(session, request_id, extranonce1, token, now):
        _subscribe_reply(session, request_id, now)


def _subscribed_with(session: SessionCore, request_id: Any, extranonce1: bytes | None, token: str, now: float) -> bool:
    if extranonce1 is None:
        try:
            extranonce1, token = session.allocator.allocate(now)
        except ExtranonceExhausted:
            session.out.append(m.error_reply(request_id, m.OTHER, "Server full"))
            session.close_reason = "extranonce space exhausted"
            return False
    session.extranonce1, session.session_id = extranonce1, token
    session.firmware = session.classify_firmware(session.user_agent)
    floor = session.config.min_difficulty_by_firmware.get(session.firmware)
    if floor:
        session.suggested_floor = max(session.suggested_floor, floor)
        session._set_difficulty(session._current_target_difficulty(), now, reissue=False)
    return True


def _subscribe_reply(session: SessionCore, request_id: Any, now: float) -> None:
    result = m.SubscribeResult(
        [("mining.set_difficulty", session.session_id), ("mining.notify", session.session_id)],
        session.extranonce1.hex(), session.extranonce2_size)
    session.out.append(m.reply(request_id, result))
    session._move(Move.SUBSCRIBE, now)


def authorize(session: SessionCore, msg: m.Envelope, now: float) -> None:
    try:
        params = _authorize_params.decode(msg.params)
    except m.DECODE_ERRORS:
        session._bad_message(msg.id, "Invalid authorize params")
        return
    name = params.username.strip()
    account = name.split(".", 1)[0]
    limits = session.config.limits
    if name in session.workers:
        session.out.append(m.true_reply(msg.id))
        return
    if len(session.workers) >= limits.max_workers_per_connection:
        session.out.append(m.error_reply(msg.id, m.OTHER, "Too many workers"))
        session._violation()
        return
    options = parse_password(params.password)
    if options.invalid:
        session._bad_message(msg.id, f"Invalid password option {options.invalid}: not a finite number")
        return
    if (not valid_worker_name(name, limits.max_worker_name_length) or not account
            or not session.validate_account(account)):
        session.auth_failures += 1
        session.out.append(m.error_reply(msg.id, m.UNAUTHORIZED, "Unauthorized worker"))
        if session.auth_failures >= limits.max_auth_failures:
            session.close_reason = "too many failed authorizations"
        return
    session.workers[name] = WorkerStats(name, account, now)
    if len(session.workers) == 1 and session.solo:
        session.payout_key = account
    if len(session.workers) >= limits.farm_proxy_workers:
        session.farm_proxy = True
    session.out.append(m.true_reply(msg.id))
    if options.min_difficulty is not None:
        session.suggested_floor = max(session.suggested_floor, client_floor(options.min_difficulty, session.port))
    if options.fixed_difficulty is not None:
        session.fixed_difficulty = clamp_difficulty(options.fixed_difficulty, session.port)
    if options.fixed_difficulty is not None or options.min_difficulty is not None:
        session._set_difficulty(session._current_target_difficulty(), now, reissue=session.working)
    session._move(Move.AUTHORIZE, now)


def configure(session: SessionCore, msg: m.Envelope, now: float) -> None:
    try:
        params = _configure_params.decode(msg.params)
    except m.DECODE_ERRORS:
        # Still answered (cgminer/bmminer read exactly one line after configure).
        session.out.append(m.error_reply(msg.id, m.OTHER, "Invalid configure params"))
        return
    limits = session.config.limits
    outcome = negotiate(params.extensions, params.options, session._pool_mask,
                        max_info_keys=limits.max_info_keys, max_info_length=limits.max_info_length)
    if outcome.version_mask != UNCHANGED:
        session.version_mask = outcome.version_mask
    session.extranonce_subscribed |= outcome.subscribe_extranonce
    info, overflow = session.info, outcome.info_overflow
    for key, value in outcome.info.items():
        if key in info or len(info) < limits.max_info_keys:
            info[key] = value
        else:
            overflow = True
    # The reply is the next line written; a difficulty change follows it (with a new job).
    session.out.append(m.reply(msg.id, outcome.result))
    if overflow:
        session._violation()
    if outcome.minimum_difficulty is not None:
        session.suggested_floor = client_floor(outcome.minimum_difficulty, session.port)
        session._set_difficulty(session._current_target_difficulty(), now, reissue=session.working)


def extranonce_subscribe(session: SessionCore, msg: m.Envelope, now: float) -> None:
    session.extranonce_subscribed = True
    if msg.id is not None:
        session.out.append(m.true_reply(msg.id))


def suggest_difficulty(session: SessionCore, msg: m.Envelope, now: float) -> None:
    _suggest(session, msg, now, target=False)


def suggest_target(session: SessionCore, msg: m.Envelope, now: float) -> None:
    _suggest(session, msg, now, target=True)


def _suggest(session: SessionCore, msg: m.Envelope, now: float, *, target: bool) -> None:
    try:
        params = _list_params.decode(msg.params)
    except m.DECODE_ERRORS:
        params = []
    value = suggested_difficulty(params, target=target)
    if value is not None and not math.isfinite(value):
        # Only a hostile client sends these; an honest one never sees this error.
        session._bad_message(msg.id, "Suggested difficulty must be a finite number")
        return
    # Never answered false: cgminer counts any reply to it as a share (stratum.md §3.1).
    if msg.id is not None:
        session.out.append(m.true_reply(msg.id))
    if value is not None:
        session.suggested_floor = client_floor(value, session.port)
        session._set_difficulty(session._current_target_difficulty(), now, reissue=session.working)


def get_transactions(session: SessionCore, msg: m.Envelope, now: float) -> None:
    if msg.id is not None:
        session.out.append(m.reply(msg.id, []))


METHODS: dict[str, Callable[[SessionCore, m.Envelope, float], None]] = {
    "mining.subscribe": subscribe,
    "mining.authorize": authorize,
    "mining.configure": configure,
    "mining.extranonce.subscribe": extranonce_subscribe,
    "mining.suggest_difficulty": suggest_difficulty,
    "mining.suggest_target": suggest_target,
    "mining.get_transactions": get_transactions,
}
