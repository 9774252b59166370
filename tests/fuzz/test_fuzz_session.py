"""Fuzz target: the sans-IO Stratum session (lines in, replies and events out).

Whatever lines arrive (well-formed requests with hostile values, JSON of any shape, raw bytes), with
housekeeping ticks, new jobs and retargets in between, the session never raises, every byte it writes
is a newline-terminated JSON line, its difficulty stays finite inside the port's range, and what a
client can make it store stays within the configured limits."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec
from hypothesis import example, given
from hypothesis import strategies as st

from pool.chain.types import BlockCandidate
from pool.config.stratum import LimitsConfig
from pool.stratum.events import ShareRecord
from pool.stratum.session import Session
from tests.stratum.support import NOW, TestJobSource, config, make_job, new_session

LIMITS = LimitsConfig(max_info_keys=4, max_workers_per_connection=3, max_pending_requests=2,
                      max_json_depth=8, max_bad_messages=1_000_000, max_auth_failures=1_000_000,
                      ban_invalid_shares=1_000_000, reject_budget_per_connection=1_000_000)
CONFIG = config(difficulty=16.0, vardiff=True, port={"min_difficulty": 1.0, "max_difficulty": 4096.0},
                limits=LIMITS, max_jobs_per_connection=4)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
ids = st.none() | st.integers(-(1 << 64), 1 << 64) | st.text(max_size=8) | json_values
hex_words = st.one_of(st.integers(0, 0xFFFFFFFF).map(lambda n: f"{n:08x}"), st.text("0123456789abcdefXZ", max_size=10))
difficulties = st.one_of(st.floats(), st.sampled_from(["inf", "1e999", "nan", "-1", "1e308", "0x10"]),
                         st.integers(-(1 << 80), 1 << 80))
workers = st.sampled_from(["acct.w", "acct.w2", "acct", "bad.w", "", "a" * 200, "acct.\u00e9", "acct.w\x00"])


def request(method: str, params: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda i, p: {"id": i, "method": method, "params": p}, ids, params)


requests = st.one_of(
    request("mining.subscribe", st.lists(st.one_of(st.text(max_size=300), st.none(), json_values), max_size=3)),
    request("mining.authorize", st.tuples(workers, st.one_of(
        st.text(max_size=20), difficulties.map(lambda d: f"d={d}"), difficulties.map(lambda d: f"x,md={d}")))
        .map(list)),
    request("mining.configure", st.tuples(
        st.lists(st.sampled_from(["version-rolling", "minimum-difficulty", "subscribe-extranonce", "info", "x"]),
                 max_size=5),
        st.dictionaries(st.sampled_from(["version-rolling.mask", "version-rolling.min-bit-count",
                                         "minimum-difficulty.value", "info.connection-url", "info.hw-version",
                                         "info.sw-version", "info.x", "info.y", "info.z"]),
                        st.one_of(difficulties, hex_words, json_values), max_size=6)).map(list)),
    request("mining.suggest_difficulty", st.lists(difficulties, max_size=2)),
    request("mining.suggest_target", st.lists(st.one_of(hex_words, st.text("0f", min_size=64, max_size=64)),
                                              max_size=2)),
    request("mining.submit", st.tuples(workers, st.sampled_from(["j1", "j2", "j1.1", "nope", ""]),
                                       st.text("0123456789abcdef", max_size=20), hex_words, hex_words)
            .map(list) | st.lists(json_values, max_size=7)),
    request("mining.extranonce.subscribe", st.just([])),
    request("mining.get_transactions", st.lists(json_values, max_size=1)),
    st.builds(lambda i, r: {"id": i, "result": r, "error": None}, st.sampled_from(["gv1", "gv2", 5]),
              st.text(max_size=300) | json_values),
    st.builds(lambda m, p: {"id": 1, "method": m, "params": p}, st.text(max_size=30), json_values),
    st.dictionaries(st.sampled_from(["id", "method", "params", "result", "jsonrpc"]), json_values, max_size=5),
)
lines = st.one_of(
    requests.map(lambda r: json.dumps(r).encode()),       # NaN/Infinity tokens too: not JSON
    st.binary(max_size=120).map(lambda b: b.replace(b"\n", b"")),
    st.integers(1, 40).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 40).map(lambda n: b'{"id":1,"method":"mining.subscribe","params":' + b"[" * n + b"]" * n + b"}"),
)
actions = st.one_of(
    lines.map(lambda line: ("line", line)),
    st.floats(0, 2000).map(lambda dt: ("tick", dt)),
    st.sampled_from(["j1", "j2"]).map(lambda job_id: ("job", job_id)),
    st.one_of(difficulties.filter(lambda d: isinstance(d, float | int)), st.just(1e308)).map(lambda d: ("retarget", d)),
    st.just(("version", None)),
)


def check_invariants(session: Session) -> None:
    for chunk in session.out:
        assert chunk.endswith(b"\n")
        for line in chunk.splitlines():
            msgspec.json.decode(line)                   # strict JSON: no NaN, no Infinity
    session.out.clear()
    for event in session.events:
        assert type(event) in (ShareRecord, BlockCandidate)
        if type(event) is ShareRecord:
            assert math.isfinite(event.difficulty) and event.difficulty > 0
    session.events.clear()
    port = session.port
    for difficulty in (session.difficulty, session.pending_difficulty, session.fixed_difficulty):
        if difficulty is not None:
            assert math.isfinite(difficulty) and port.min_difficulty <= difficulty <= port.max_difficulty
    limits = session.config.limits
    assert len(session.info) <= limits.max_info_keys
    assert len(session.workers) <= limits.max_workers_per_connection
    assert len(session.user_agent) <= limits.max_user_agent_length
    assert len(session.sent_jobs) <= session.config.max_jobs_per_connection
    assert all(len(name) <= limits.max_worker_name_length for name in session.workers)


@given(st.lists(actions, max_size=40))
@example([("line", b'{"id":1,"method":"mining.configure","params":[["minimum-difficulty"],'
                   b'{"minimum-difficulty.value":1e999}]}'), ("tick", 200.0)])
@example([("line", b'{"id":1,"method":"mining.authorize","params":["acct.w","md=1e308"]}'),
          ("line", b'{"id":2,"method":"mining.subscribe","params":[]}'), ("retarget", 1e308), ("tick", 100.0)])
@example([("line", b"[" * 1200 + b"]" * 1200)])
def test_the_session_survives_any_input(steps: list[tuple[str, Any]]) -> None:
    jobs = TestJobSource()
    jobs.publish(make_job("j1"))
    session = new_session(CONFIG, jobs)
    now = NOW
    for kind, value in steps:
        if kind == "line":
            session.receive_line(value, now)
        elif kind == "tick":
            now += value
            session.tick(now)
        elif kind == "job":
            jobs.publish(make_job(value, prevhash=bytes([len(value)]) * 32))
            job = jobs.current_job()
            session.push_job(job, job.job_id, job.ntime, True, b'{"method":"mining.notify"}\n', now, {})
            session.reissue(now, clean=False)
        elif kind == "retarget":
            session.retarget(float(value) if math.isfinite(float(value)) else 1e308, now)
        else:
            session.request_version()
        check_invariants(session)
        if session.close_reason:
            break                                       # the server stops reading here
    session.connection_lost(now)


_TOKEN = re.compile(rb'"(mining\.set_difficulty|mining\.notify)","[0-9a-f]{8}"')
SMALL_LINES = config(difficulty=16.0, limits=LimitsConfig(max_line_bytes=600, max_bad_messages=1_000_000,
                                                          max_json_depth=8))


def fed(stream: bytes, cuts: list[int]) -> tuple[bytes, list[str], str | None]:
    """What a session writes, emits and ends with when `stream` arrives cut at `cuts`."""
    jobs = TestJobSource()
    jobs.publish(make_job("j1"))
    session = new_session(SMALL_LINES, jobs, extranonce1="0a0b0c0d")
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    for piece in pieces:
        session.receive_data(piece, NOW)
    out = _TOKEN.sub(rb'"\1","TOKEN"', b"".join(session.out))   # session tokens are random
    return out, [type(e).__name__ for e in session.events], session.close_reason


@given(st.lists(lines, max_size=12), st.lists(st.integers(0, 1 << 16), max_size=8),
       st.integers(0, 1200))
# Found by this target: a subscribe and an over-long unfinished line in one read lost the subscribe
# (the tail was judged before the complete lines ahead of it); cut in two reads, it was answered.
@example([b'{"id":1,"method":"mining.subscribe","params":[]}'], [], 700)
def test_how_tcp_cuts_the_bytes_changes_nothing(parts: list[bytes], cuts: list[int], long_line: int) -> None:
    stream = b"".join(part + b"\n" for part in parts) + b"x" * long_line
    points = sorted({cut % (len(stream) + 1) for cut in cuts})
    assert fed(stream, points) == fed(stream, [])
