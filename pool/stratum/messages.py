"""Stratum V1 wire types (msgspec) and the pre-encoded replies the hot path writes.

Requests are decoded in two steps: the envelope (id, method, params as raw JSON), then the params
into the method's own array-like Struct, so a wrong type becomes a clear error naming the field.
Ids are kept as decoded JSON values and echoed with their original type (int, str or null).
"""

from __future__ import annotations

from typing import Any

import msgspec

from pool.chain.types import Job

# ----------------------------------------------------------------------------------------------------
# Client -> server

# What decoding a client's line or its params may raise (a bad message, never a server error).
DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


class Envelope(msgspec.Struct):
    """Any line a client sends: a request, a notification (id null) or a reply to our request."""

    id: Any = None
    method: str | None = None
    params: msgspec.Raw = msgspec.Raw(b"[]")
    result: Any = None
    error: Any = None


class SubmitParams(msgspec.Struct, array_like=True):
    worker: str
    job_id: str
    extranonce2: str
    ntime: str | int          # hex text; numbers accepted defensively
    nonce: str | int
    version_bits: str | int | None = None


class AuthorizeParams(msgspec.Struct, array_like=True):
    username: str
    password: str | None = None


class ConfigureParams(msgspec.Struct, array_like=True):
    extensions: list[str]
    options: dict[str, Any] = {}


SuggestParams = list[Any]    # [number] or [hex target]; anything else is ignored, never answered false
SubscribeParams = list[Any]  # [], [ua], [ua, session], [ua, null], [ua, null, host, null] ...

# ----------------------------------------------------------------------------------------------------
# Server -> client


class Reply(msgspec.Struct, omit_defaults=False):
    id: Any
    result: Any
    error: Any = None


class ErrorReply(msgspec.Struct, omit_defaults=False, rename={"reject_reason": "reject-reason"}):
    id: Any
    result: bool
    error: tuple[int, str, None]
    reject_reason: str


class Notification(msgspec.Struct, omit_defaults=False):
    id: None
    method: str
    params: Any


class Request(msgspec.Struct, omit_defaults=False):
    """A request the server sends (client.get_version) and expects a reply to."""

    id: Any
    method: str
    params: list[Any]


class NotifyParams(msgspec.Struct, array_like=True):
    job_id: str
    prevhash: str
    coinb1: str
    coinb2: str
    merkle_branch: list[str]
    version: str
    nbits: str
    ntime: str
    clean_jobs: bool


class SubscribeResult(msgspec.Struct, array_like=True):
    subscriptions: list[tuple[str, str]]
    extranonce1: str
    extranonce2_size: int


# ----------------------------------------------------------------------------------------------------
# Error codes (stratum.md §4) and rejects


OTHER = 20
JOB_NOT_FOUND = 21
DUPLICATE = 22
LOW_DIFFICULTY = 23
UNAUTHORIZED = 24
NOT_SUBSCRIBED = 25

_encoder = msgspec.json.Encoder()
encode = _encoder.encode


class Reject:
    """One reject reason: the counting key, the code and the short text cgminer prints (<= 28 chars)."""

    __slots__ = ("code", "key", "tail", "text")

    def __init__(self, key: str, code: int, text: str) -> None:
        self.key = key
        self.code = code
        self.text = text
        # Everything after the id, pre-encoded once.
        body = encode(ErrorReply(id=0, result=False, error=(code, text, None), reject_reason=text))
        self.tail = body[len(b'{"id":0') :] + b"\n"

    def reply(self, request_id: Any) -> bytes:
        return b'{"id":' + encode_id(request_id) + self.tail

    def __repr__(self) -> str:
        return f"Reject({self.key!r}, {self.code}, {self.text!r})"


STALE = Reject("stale", JOB_NOT_FOUND, "Stale")
UNKNOWN_JOB = Reject("job_not_found", JOB_NOT_FOUND, "Job not found")
DUPLICATE_SHARE = Reject("duplicate", DUPLICATE, "Duplicate share")
LOW_DIFF = Reject("low_difficulty", LOW_DIFFICULTY, "Low difficulty share")
UNAUTHORIZED_WORKER = Reject("unauthorized", UNAUTHORIZED, "Unauthorized worker")
NOT_SUBSCRIBED_YET = Reject("not_subscribed", NOT_SUBSCRIBED, "Not subscribed")
NTIME_OUT_OF_RANGE = Reject("ntime_out_of_range", OTHER, "Ntime out of range")
BAD_EXTRANONCE2 = Reject("bad_extranonce2", OTHER, "Invalid extranonce2 size")
BAD_NTIME = Reject("bad_ntime", OTHER, "Invalid ntime")
BAD_NONCE = Reject("bad_nonce", OTHER, "Invalid nonce")
BAD_VERSION = Reject("bad_version", OTHER, "Invalid version bits")
RATE_LIMITED = Reject("rate_limited", OTHER, "Too many submits")
MALFORMED = Reject("malformed", OTHER, "Invalid submit params")
# A valid share the pool could not make durable (its journal write failed): never acknowledged.
NOT_RECORDED = Reject("not_recorded", OTHER, "Share not recorded")

# Rejects that do not count toward a ban: they happen to honest miners (around block changes, or
# when the pool's own storage fails).
HONEST_REJECTS = frozenset({STALE.key, UNKNOWN_JOB.key, NOT_RECORDED.key})

_ID_CACHE: dict[Any, bytes] = {}
_TRUE_CACHE: dict[Any, bytes] = {}
_TRUE_TAIL = b',"result":true,"error":null}\n'


def encode_id(request_id: Any) -> bytes:
    # Cache only small ints and short strings (what real miners use), so a hostile client cannot
    # grow the cache without bound.
    cached = _ID_CACHE.get(request_id) if type(request_id) in (int, str) else None
    if cached is not None:
        return cached
    if request_id is not None and not isinstance(request_id, int | str | float):
        request_id = None   # objects/arrays as id: answer with null rather than echo a structure
    data = encode(request_id)
    if len(_ID_CACHE) < 4096 and type(request_id) in (int, str) and len(data) <= 24:
        _ID_CACHE[request_id] = data
    return data


def true_reply(request_id: Any) -> bytes:
    """`{"id":X,"result":true,"error":null}` - pre-encoded per id (cpuminer uses id 4 for every submit)."""
    cached = _TRUE_CACHE.get(request_id) if type(request_id) in (int, str) else None
    if cached is not None:
        return cached
    data = b'{"id":' + encode_id(request_id) + _TRUE_TAIL
    if len(_TRUE_CACHE) < 4096 and type(request_id) in (int, str):
        _TRUE_CACHE[request_id] = data
    return data


def reply(request_id: Any, result: Any) -> bytes:
    return encode(Reply(id=request_id if _plain(request_id) else None, result=result)) + b"\n"


def error_reply(request_id: Any, code: int, text: str) -> bytes:
    body = ErrorReply(id=request_id if _plain(request_id) else None, result=False,
                      error=(code, text, None), reject_reason=text)
    return encode(body) + b"\n"


def notification(method: str, params: Any) -> bytes:
    return encode(Notification(id=None, method=method, params=params)) + b"\n"


def request(request_id: Any, method: str, params: list[Any]) -> bytes:
    return encode(Request(id=request_id, method=method, params=params)) + b"\n"


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, int | str | float)


# ----------------------------------------------------------------------------------------------------
# Server notifications


_DIFFICULTY_CACHE: dict[float, bytes] = {}


def set_difficulty(difficulty: float) -> bytes:
    cached = _DIFFICULTY_CACHE.get(difficulty)
    if cached is None:
        value: float | int = int(difficulty) if difficulty == int(difficulty) else difficulty
        cached = notification("mining.set_difficulty", [value])
        if len(_DIFFICULTY_CACHE) < 10000:
            _DIFFICULTY_CACHE[difficulty] = cached
    return cached


def set_extranonce(extranonce1: bytes, extranonce2_size: int) -> bytes:
    return notification("mining.set_extranonce", [extranonce1.hex(), extranonce2_size])


def set_version_mask(mask: int) -> bytes:
    return notification("mining.set_version_mask", [f"{mask:08x}"])


def reconnect(host: str | None = None, port: int | None = None, wait: int = 0) -> bytes:
    params: list[Any] = [] if host is None else [host, port if port is not None else "", wait]
    return notification("client.reconnect", params)


def show_message(text: str) -> bytes:
    return notification("client.show_message", [text])


def stratum_prevhash(prevhash_internal: bytes) -> str:
    """Internal-order prevhash -> the notify form: every 4-byte word byte-swapped (stratum.md §5.1)."""
    return b"".join(prevhash_internal[i : i + 4][::-1] for i in range(0, 32, 4)).hex()


def internal_prevhash(stratum_hex: str) -> bytes:
    raw = bytes.fromhex(stratum_hex)
    if len(raw) != 32:
        raise ValueError("prevhash must be 32 bytes")
    return b"".join(raw[i : i + 4][::-1] for i in range(0, 32, 4))


class JobWire:
    """The job-constant text of a notify, computed once per Job."""

    __slots__ = ("branches", "coinb1", "coinb2", "nbits", "prevhash", "version")

    def __init__(self, job: Job) -> None:
        self.prevhash = stratum_prevhash(job.prevhash)
        self.coinb1 = job.coinb1.hex()
        self.coinb2 = job.coinb2.hex()
        self.branches = [branch.hex() for branch in job.merkle_branches]
        self.version = f"{job.version:08x}"
        self.nbits = f"{job.nbits:08x}"

    def notify(self, wire_job_id: str, ntime: int, clean_jobs: bool) -> bytes:
        params = NotifyParams(wire_job_id, self.prevhash, self.coinb1, self.coinb2, self.branches,
                              self.version, self.nbits, f"{ntime:08x}", clean_jobs)
        return notification("mining.notify", params)


_WIRE_CACHE: dict[str, tuple[Job, JobWire]] = {}


def job_wire(job: Job) -> JobWire:
    """JobWire for a job, cached by job id (bounded: old jobs fall out first)."""
    entry = _WIRE_CACHE.get(job.job_id)
    if entry is not None and entry[0] is job:
        return entry[1]
    wire = JobWire(job)
    if len(_WIRE_CACHE) >= 256:
        del _WIRE_CACHE[next(iter(_WIRE_CACHE))]
    _WIRE_CACHE[job.job_id] = (job, wire)
    return wire
