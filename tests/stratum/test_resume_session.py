"""Resume through a shared directory, sans-IO: the session waits for the lookup (input paused; later
lines are held by receive_data, see test_session_states.py), adopts a claimed extranonce1 or
allocates a fresh one; the allocator keeps parked, settling, lent and reserved values out of new
allocations."""

from __future__ import annotations

import json

import pytest

from pool.config.errors import ConfigError
from pool.config.stratum import StratumConfig
from pool.stratum.extranonce import ExtranonceAllocator, ExtranonceExhausted
from pool.stratum.resume import ParkedSession, ResumeLookup
from pool.stratum.session import InputPaused, Session
from tests.stratum.support import NOW, TestJobSource, config, make_job, take


def shared_session(allocator: ExtranonceAllocator, jobs: TestJobSource) -> Session:
    cfg = config(difficulty=1024, min_difficulty=1)
    return Session(config=cfg, port=cfg.ports[0], jobs=jobs, allocator=allocator,
                   validate_account=lambda account: True, classify_firmware=lambda ua: "cgminer", now=NOW,
                   resume_lookups=True)


def line(obj: object) -> bytes:
    return json.dumps(obj).encode()


SUBSCRIBE_RESUME = {"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.11.1", "0a1b2c3d"]}
AUTHORIZE = {"id": 2, "method": "mining.authorize", "params": ["acct.rig", "x"]}


@pytest.fixture
def jobs() -> TestJobSource:
    source = TestJobSource()
    source.publish(make_job("r1"))
    return source


def test_pipelined_subscribe_authorize_waits_for_the_claim_then_adopts(jobs: TestJobSource) -> None:
    allocator = ExtranonceAllocator(prefix=0x42, prefix_bits=8, shared=True)
    session = shared_session(allocator, jobs)
    with pytest.raises(InputPaused):
        session.receive_line(line(SUBSCRIBE_RESUME), NOW)
    assert session.events == [ResumeLookup("0a1b2c3d")]
    assert session.out == [] and not session.subscribed       # no reply before the directory answered
    session.events.clear()

    claimed = bytes.fromhex("17000005")                       # another process's prefix
    session.resume_answer(ParkedSession("0a1b2c3d", claimed, NOW + 300), NOW + 0.1)
    reply = take(session)[0]
    assert reply["id"] == 1 and reply["result"][1] == "17000005"
    assert reply["result"][0] == [["mining.set_difficulty", "0a1b2c3d"], ["mining.notify", "0a1b2c3d"]]
    assert allocator.live == 1 and allocator.borrowed == 1
    # The authorize the caller held back is answered next, then work starts on the adopted value.
    session.receive_line(line(AUTHORIZE), NOW + 0.1)
    out = take(session)
    assert out[0] == {"id": 2, "result": True, "error": None}
    assert [m.get("method") for m in out[1:]] == ["mining.set_difficulty", "mining.notify"]
    # Closing parks it under the same token, to be published again.
    parked = session.connection_lost(NOW + 1)
    assert parked == ParkedSession("0a1b2c3d", claimed, NOW + 1 + allocator.park_seconds)
    settle, hold = allocator.sync_request(NOW + 2)
    assert settle == [] and hold == []                        # parked, not live: nothing to renew


def test_miss_or_timeout_gives_a_fresh_extranonce1_under_our_prefix(jobs: TestJobSource) -> None:
    allocator = ExtranonceAllocator(prefix=0x42, prefix_bits=8, shared=True)
    session = shared_session(allocator, jobs)
    with pytest.raises(InputPaused):
        session.receive_line(line(SUBSCRIBE_RESUME), NOW)
    session.resume_answer(None, NOW + 0.5)
    result = take(session)[0]["result"]
    assert result[1].startswith("42") and result[0][0][1] != "0a1b2c3d"
    assert allocator.live == 1 and allocator.borrowed == 0
    # A second subscribe on the same connection never looks up again.
    session.receive_line(line(SUBSCRIBE_RESUME), NOW + 1)
    assert take(session)[0]["result"][1] == result[1] and session.events == [ResumeLookup("0a1b2c3d")]


def test_implausible_tokens_are_not_looked_up(jobs: TestJobSource) -> None:
    allocator = ExtranonceAllocator(prefix=0x42, prefix_bits=8, shared=True)
    for token in ["x" * 33, "ab cd", "tok|en", "zzz\u00e9"]:
        session = shared_session(allocator, jobs)
        session.receive_line(line({"id": 1, "method": "mining.subscribe", "params": ["a/1", token]}), NOW)
        assert session.events == [] and take(session)[0]["result"][1].startswith("42")


def test_server_full_after_a_miss_is_a_clear_error(jobs: TestJobSource) -> None:
    allocator = ExtranonceAllocator(prefix=1, prefix_bits=24, start=0, shared=True)
    for _ in range(allocator.capacity):
        allocator.allocate(NOW)
    session = shared_session(allocator, jobs)
    with pytest.raises(InputPaused):
        session.receive_line(line(SUBSCRIBE_RESUME), NOW)
    session.resume_answer(None, NOW)
    assert take(session)[0]["error"][1] == "Server full" and session.close_reason == "extranonce space exhausted"


def test_shared_allocator_frees_an_expired_park_only_when_the_directory_settled_it() -> None:
    allocator = ExtranonceAllocator(prefix=3, prefix_bits=24, start=0, park_seconds=10, shared=True)
    assert allocator.capacity == 256
    first, token = allocator.allocate(0.0)
    allocator.park(first, token, 1.0)
    settle, _ = allocator.sync_request(20.0)                  # expired locally ...
    assert settle == [(token, first)]
    values = {allocator.allocate(20.0)[0] for _ in range(255)}
    assert first not in values                               # ... but still not handed out
    with pytest.raises(ExtranonceExhausted):
        allocator.allocate(20.0)
    # The directory says someone claimed it before we withdrew it: it stays reserved.
    allocator.apply_sync(settle, [first], prefix=3)
    for value in values:
        allocator.release(value)
    assert first not in {allocator.allocate(21.0)[0] for _ in range(255)}
    # The holder gave it back: free again.
    allocator.apply_sync([], [], prefix=3)
    assert allocator.allocate(22.0)[0] == first


def test_shared_allocator_adopts_and_returns_borrowed_values() -> None:
    allocator = ExtranonceAllocator(prefix=3, prefix_bits=24, start=0, park_seconds=10, shared=True)
    own, token = allocator.allocate(0.0)
    allocator.park(own, token, 1.0)
    allocator.adopt(own, token)                               # the miner came back here via the directory
    assert allocator.parked == 0 and allocator.live == 1 and allocator.borrowed == 1
    foreign = bytes.fromhex("00000507")
    allocator.adopt(foreign, "feedbeef")
    assert sorted(allocator.sync_request(2.0)[1]) == sorted([own, foreign])
    allocator.release(foreign)                                # closed without a park (e.g. moved)
    settle, hold = allocator.sync_request(3.0)
    assert settle == [("", foreign)] and hold == [own]
    allocator.apply_sync(settle, [], prefix=3)
    assert allocator.sync_request(4.0) == ([], [own]) and allocator.borrowed == 1
    # A stale answer for an old prefix does not overwrite the reserved values of the new one.
    allocator.set_prefix(4, 24, reserved=[bytes.fromhex("00000401")])
    allocator.apply_sync([], [], prefix=3)
    assert allocator.reserved == 1


def test_values_of_a_prefix_left_behind_are_held_through_the_directory() -> None:
    # A lost lease: the process moves to a new prefix while its miners keep their old extranonce1s.
    allocator = ExtranonceAllocator(prefix=3, prefix_bits=24, start=0, park_seconds=10, shared=True)
    first, _ = allocator.allocate(0.0)
    second, token = allocator.allocate(0.0)
    allocator.set_prefix(9, 24)
    fresh, _ = allocator.allocate(1.0)
    assert fresh[:3] == bytes.fromhex("000009") and allocator.borrowed == 2
    assert sorted(allocator.sync_request(2.0)[1]) == sorted([first, second])   # renewed as held
    allocator.release(first)                                                   # its miner left
    allocator.park(second, token, 3.0)
    settle, hold = allocator.sync_request(4.0)
    assert settle == [("", first)] and hold == []          # given back; the park is published
    allocator.apply_sync(settle, [], prefix=9)
    assert allocator.borrowed == 1                          # the parked one until its park settles


@pytest.mark.parametrize(("fields", "key"), [
    ({"resume_lookup_timeout": 0.0}, "resume_lookup_timeout"),
    ({"resume_lookup_timeout": 30.0}, "resume_lookup_timeout"),
    ({"resume_sync_seconds": -1.0}, "resume_sync_seconds"),
    ({"resume_sync_seconds": 10.0, "resume_loan_seconds": 20.0}, "resume_loan_seconds"),
    ({"session_resume_seconds": -5.0}, "session_resume_seconds"),
])
def test_resume_config_errors_name_the_key(fields: dict[str, float], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        StratumConfig(**fields).validate()
    assert caught.value.key == key
