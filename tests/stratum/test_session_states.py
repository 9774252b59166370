"""The session's state table and its byte-level input, sans-IO: handshakes in either order reach
WORKING once, a resume look-up holds the input (pipelined lines included) until its answer, lines
are split and bounded by the session itself, and a move the table lacks is a bug that raises."""

from __future__ import annotations

import json

import pytest

from pool.config.stratum import LimitsConfig
from pool.stratum.extranonce import ExtranonceAllocator
from pool.stratum.resume import ParkedSession, ResumeLookup
from pool.stratum.session import Session
from pool.stratum.session_states import PAUSED_STATES, TRANSITIONS, IllegalMove, Move, State, next_state
from tests.stratum.support import NOW, TestJobSource, config, make_job, new_session, take

SUBSCRIBE = {"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.11.1"]}
AUTHORIZE = {"id": 2, "method": "mining.authorize", "params": ["acct.rig", "x"]}


def wire(*messages: object) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


@pytest.fixture
def jobs() -> TestJobSource:
    source = TestJobSource()
    source.publish(make_job("s1"))
    return source


def methods(session: Session) -> list[object]:
    return [m.get("method", m.get("id")) for m in take(session)]


def test_every_state_has_a_row_and_every_row_leads_to_closed_on_loss() -> None:
    assert set(TRANSITIONS) == set(State)
    for state, row in TRANSITIONS.items():
        assert row[Move.LOST] is State.CLOSED, state
    with pytest.raises(IllegalMove, match="authorize in state resuming"):
        next_state(State.RESUMING, Move.AUTHORIZE)
    with pytest.raises(IllegalMove):
        next_state(State.CLOSED, Move.SUBSCRIBE)


@pytest.mark.parametrize("order", [(SUBSCRIBE, AUTHORIZE), (AUTHORIZE, SUBSCRIBE)])
def test_either_handshake_order_starts_work_once(jobs: TestJobSource, order: tuple[dict, dict]) -> None:
    session = new_session(config(difficulty=1e-9), jobs)
    session.receive_data(wire(order[0]), NOW)
    assert session.state is (State.SUBSCRIBED if order[0] is SUBSCRIBE else State.AUTHORIZED)
    assert not session.working
    take(session)
    session.receive_data(wire(order[1]), NOW)
    assert session.state is State.WORKING and session.working and session.subscribed
    assert methods(session) == [order[1]["id"], "mining.set_difficulty", "mining.notify"]
    # A second subscribe or another worker answers, and sends no second first job.
    session.receive_data(wire(SUBSCRIBE, {"id": 3, "method": "mining.authorize", "params": ["acct.rig2"]}), NOW)
    assert methods(session) == [1, 3] and session.state is State.WORKING
    session.halt(NOW)
    assert session.state is State.HALTED and not session.working and session.subscribed
    session.connection_lost(NOW)
    assert session.state is State.CLOSED and not session.subscribed


def test_lines_are_split_across_reads_and_bounded(jobs: TestJobSource) -> None:
    session = new_session(config(difficulty=1e-9, limits=LimitsConfig(max_line_bytes=600)), jobs)
    data = wire(SUBSCRIBE, AUTHORIZE)
    for i in range(0, len(data), 7):                # 7 bytes per read: every line arrives in pieces
        session.receive_data(data[i : i + 7], NOW)
    assert methods(session) == [1, 2, "mining.set_difficulty", "mining.notify"]
    session.receive_data(b"\r\n\n", NOW)           # blank lines (and a lone CR) are skipped
    assert session.out == [] and session.close_reason is None
    session.receive_data(b'{"id": 5, "method": "mining.ping", "params": ["' + b"x" * 600, NOW)
    assert [(m["id"], m["error"]) for m in take(session)] == [(None, [20, "Line too long", None])]
    assert session.close_reason == "line too long"
    session.receive_data(wire({"id": 6, "method": "mining.subscribe", "params": []}), NOW)
    assert session.out == []                        # nothing is read once the session asked to close


def test_a_complete_line_over_the_limit_closes_before_the_lines_after_it(jobs: TestJobSource) -> None:
    session = new_session(config(difficulty=1e-9, limits=LimitsConfig(max_line_bytes=512)), jobs)
    long_line = json.dumps({"id": 9, "method": "mining.subscribe", "params": ["x" * 600]}).encode()
    session.receive_data(wire(SUBSCRIBE) + long_line + b"\n" + wire(AUTHORIZE), NOW)
    out = take(session)
    assert out[0]["id"] == 1 and out[1]["error"][1] == "Line too long" and len(out) == 2
    assert session.close_reason == "line too long" and session.state is State.SUBSCRIBED


def test_a_resume_holds_pipelined_input_until_the_answer(jobs: TestJobSource) -> None:
    cfg = config(difficulty=1e-9)
    allocator = ExtranonceAllocator(prefix=0x42, prefix_bits=8, shared=True)
    session = Session(config=cfg, port=cfg.ports[0], jobs=jobs, allocator=allocator,
                      validate_account=lambda account: True, classify_firmware=lambda ua: "cgminer", now=NOW,
                      resume_lookups=True)
    resume = {"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.11.1", "0a1b2c3d"]}
    session.receive_data(wire(resume, AUTHORIZE)[:-5], NOW)      # authorize still incomplete
    assert session.state is State.RESUMING and session.state in PAUSED_STATES
    assert session.events == [ResumeLookup("0a1b2c3d")] and session.out == []
    session.receive_data(wire(AUTHORIZE)[-5:], NOW)              # the rest arrives while waiting
    assert session.out == [] and not session.workers             # held, not read
    session.events.clear()
    claimed = bytes.fromhex("17000005")
    session.resume_answer(ParkedSession("0a1b2c3d", claimed, NOW + 300), NOW)
    assert session.state is State.SUBSCRIBED
    assert take(session)[0]["result"][1] == "17000005"
    session.receive_data(b"", NOW)                               # the held input, in order
    assert methods(session) == [2, "mining.set_difficulty", "mining.notify"]
    assert session.state is State.WORKING


def test_authorize_first_then_a_resume_returns_to_authorized(jobs: TestJobSource) -> None:
    cfg = config(difficulty=1e-9)
    session = Session(config=cfg, port=cfg.ports[0], jobs=jobs,
                      allocator=ExtranonceAllocator(prefix=0x42, prefix_bits=8, shared=True),
                      validate_account=lambda account: True, classify_firmware=lambda ua: "cgminer", now=NOW,
                      resume_lookups=True)
    session.receive_data(wire(AUTHORIZE), NOW)
    session.receive_data(wire({"id": 1, "method": "mining.subscribe", "params": ["a/1", "0a1b2c3d"]}), NOW)
    assert session.state is State.AUTHORIZED_RESUMING
    session.resume_answer(None, NOW)                             # a miss: a fresh extranonce1
    assert session.state is State.WORKING
    assert methods(session) == [2, 1, "mining.set_difficulty", "mining.notify"]
