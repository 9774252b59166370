"""Conversations of real firmware families (stratum.md §2.2, §3, §10), played against the session."""

from __future__ import annotations

from tests.stratum.support import (
    NOW,
    TestJobSource,
    config,
    grind,
    make_job,
    new_session,
    send,
    submit,
    take,
)


def handshake_ok(replies: list[dict], request_id: object) -> dict:
    reply = next(r for r in replies if r.get("id") == request_id and "result" in r)
    assert reply["error"] is None, reply
    return reply


def test_antminer_s9_configure_is_answered_first_and_mask_intersected() -> None:
    # Captured S9 stock firmware against AntPool (ISSUE-hathor): configure id 4, subscribe id 9.
    jobs = TestJobSource()
    jobs.publish(make_job("a1"))
    session = new_session(config(difficulty=1e-9), jobs)
    replies = send(session, {"id": 4, "method": "mining.configure", "params": [
        ["version-rolling"], {"version-rolling.min-bit-count": 2, "version-rolling.mask": "00c00000"}]})
    # The configure reply must be the very next (and only) line written.
    assert replies == [{"id": 4, "result": {"version-rolling": True, "version-rolling.mask": "00c00000"},
                        "error": None}]
    sub = send(session, {"id": 9, "method": "mining.subscribe", "params": ["bmminer/2.0.0.rwglr"]})
    result = handshake_ok(sub, 9)["result"]
    assert [pair[0] for pair in result[0]] == ["mining.set_difficulty", "mining.notify"]
    assert len(result[1]) == 8 and result[2] == 8
    out = send(session, {"id": 10, "method": "mining.authorize", "params": ["acct.s9", "x"]})
    assert out[0] == {"id": 10, "result": True, "error": None}
    assert [o.get("method") for o in out[1:]] == ["mining.set_difficulty", "mining.notify"]
    assert out[2]["params"][8] is True
    extranonce1 = bytes.fromhex(result[1])
    job = jobs.current_job()
    en2, nonce = grind(job, extranonce1, min_difficulty=1e-9, version_bits=0x00400000, mask=0x00C00000)
    ok = send(session, submit("acct.s9", "a1", en2, job.ntime, nonce, 0x00400000, request_id=11))
    assert ok == [{"id": 11, "result": True, "error": None}]
    # Bits outside the granted 00c00000 (inside the pool's 1fffe000) are refused: 20.
    bad = send(session, submit("acct.s9", "a1", en2, job.ntime, nonce, 0x01000000, request_id=12))
    assert bad[0]["result"] is False and bad[0]["error"][0] == 20
    assert session.workers["acct.s9"].rejected == {"bad_version": 1}


def test_whatsminer_mask_without_min_bit_count() -> None:
    jobs = TestJobSource()
    session = new_session(config(), jobs)
    out = send(session, {"id": 1, "method": "mining.configure",
                         "params": [["version-rolling"], {"version-rolling.mask": "1fffe000"}]})
    assert out == [{"id": 1, "result": {"version-rolling": True, "version-rolling.mask": "1fffe000"},
                    "error": None}]
    assert send(session, {"id": 2, "method": "mining.subscribe", "params": ["whatsminer/v1.0"]})[0]["error"] is None
    assert session.firmware == "whatsminer"


def test_braiins_bmminer_bit_count_key_and_xor_version() -> None:
    # Braiins bmminer: non-standard "version-rolling.bit-count", mask ffffffff, 6th param = job XOR work.
    jobs = TestJobSource()
    job = make_job("b1")
    jobs.publish(job)
    session = new_session(config(difficulty=1e-9), jobs)
    out = send(session, {"id": 1, "method": "mining.configure", "params": [
        ["version-rolling"], {"version-rolling.bit-count": 2, "version-rolling.mask": "ffffffff"}]})
    assert out[0]["result"] == {"version-rolling": True, "version-rolling.mask": "1fffe000"}
    en1 = bytes.fromhex(send(session, {"id": 2, "method": "mining.subscribe", "params": ["bOS+ 2019"]})[0]["result"][1])
    send(session, {"id": 3, "method": "mining.authorize", "params": ["acct.bos", "x"]})
    work_version = 0x20800000
    xor_bits = job.version ^ work_version     # = the rolled bits: the job version has none inside the mask
    en2, nonce = grind(job, en1, min_difficulty=1e-9, version_bits=xor_bits, mask=0x1FFFE000)
    reply = send(session, submit("acct.bos", "b1", en2, job.ntime, nonce, xor_bits, request_id=7))
    assert reply == [{"id": 7, "result": True, "error": None}]


def test_cgminer_suggest_after_authorize_and_session_resume() -> None:
    jobs = TestJobSource()
    jobs.publish(make_job("c1"))
    cfg = config(difficulty=1024, port={"max_difficulty": 1e9}, min_difficulty=1)
    session = new_session(cfg, jobs)
    result = send(session, {"id": 0, "method": "mining.subscribe", "params": ["cgminer/4.11.1"]})[0]["result"]
    session_id, extranonce1 = result[0][1][1], result[1]
    out = send(session, {"id": 1, "method": "mining.authorize", "params": ["acct.rig", "x"]})
    assert out[1] == {"id": None, "method": "mining.set_difficulty", "params": [1024]}
    # suggest_difficulty after authorize: answered true (never false), applied with a NEW job id.
    out = send(session, {"id": 2, "method": "mining.suggest_difficulty", "params": [4096]})
    assert out[0] == {"id": 2, "result": True, "error": None}
    assert out[1] == {"id": None, "method": "mining.set_difficulty", "params": [4096]}
    assert out[2]["method"] == "mining.notify" and out[2]["params"][0] != "c1"
    # Disconnect, reconnect with the notify subscription id: the same extranonce1 comes back.
    allocator = session.allocator
    session.connection_lost(NOW + 100)
    again = new_session(cfg, jobs)
    again.allocator = allocator
    resumed = send(again, {"id": 0, "method": "mining.subscribe", "params": ["cgminer/4.11.1", session_id]},
                   now=NOW + 200)[0]["result"]
    assert resumed[1] == extranonce1
    # A stranger's token, or one that expired, gets a fresh extranonce1.
    third = new_session(cfg, jobs)
    third.allocator = allocator
    other = send(third, {"id": 0, "method": "mining.subscribe", "params": ["cgminer/4.11.1", "deadbeef"]})
    assert other[0]["result"][1] != extranonce1


def test_cpuminer_fixed_submit_id_four() -> None:
    jobs = TestJobSource()
    job = make_job("d1", extranonce2_size=8)
    jobs.publish(job)
    session = new_session(config(difficulty=1e-9), jobs)
    reply = send(session, {"id": 1, "method": "mining.subscribe", "params": ["cpuminer/2.5.1"]})
    en1 = bytes.fromhex(reply[0]["result"][1])
    send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.cpu", "x"]})
    for start in (0, 1000, 2000):
        en2, nonce = grind(job, en1, min_difficulty=1e-9, start=start)
        assert send(session, submit("acct.cpu", "d1", en2, job.ntime, nonce)) == [
            {"id": 4, "result": True, "error": None}]
    assert session.workers["acct.cpu"].accepted == 3


def test_bfgminer_suggest_target_before_subscribe_with_null_id() -> None:
    jobs = TestJobSource()
    jobs.publish(make_job("e1"))
    session = new_session(config(difficulty=1024, min_difficulty=1), jobs)
    target = "0000000000003fff" + "f" * 48     # diff1 / target = 0xffff * 16**4 / 0x3fff ~ 262144
    # A notification (id null) before subscribe: accepted, and never answered.
    assert send(session, {"id": None, "method": "mining.suggest_target", "params": [target]}) == []
    assert send(session, {"id": "xnsub", "method": "mining.extranonce.subscribe", "params": []}) == [
        {"id": "xnsub", "result": True, "error": None}]
    send(session, {"id": 1, "method": "mining.subscribe", "params": ["bfgminer/5.5.0"]})
    out = send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.bfg", "x"]})
    first = out[1]
    assert first["method"] == "mining.set_difficulty"
    assert 262_100 < first["params"][0] < 262_200


def test_nicehash_extranonce_subscribe_and_set_extranonce() -> None:
    jobs = TestJobSource()
    job = make_job("n1")
    jobs.publish(job)
    session = new_session(config(difficulty=1e-9), jobs)
    send(session, {"id": 1, "method": "mining.subscribe", "params": ["NiceHash/1.0.0"]})
    assert send(session, {"id": 2, "method": "mining.extranonce.subscribe", "params": []}) == [
        {"id": 2, "result": True, "error": None}]
    send(session, {"id": 3, "method": "mining.authorize", "params": ["acct.nh", "x"]})
    old_en1 = session.extranonce1
    en2, nonce = grind(job, old_en1, min_difficulty=1e-9)
    new_en1 = bytes.fromhex("0a0b0c0d")
    assert session.set_extranonce(new_en1, NOW + 1)
    out = take(session)
    assert out[0] == {"id": None, "method": "mining.set_extranonce", "params": ["0a0b0c0d", 8]}
    assert out[-1]["method"] == "mining.notify" and out[-1]["params"][8] is True
    new_job_id = out[-1]["params"][0]
    # Work for the old extranonce1 is gone; the new job is judged with the new one.
    assert send(session, submit("acct.nh", "n1", en2, job.ntime, nonce))[0]["error"][0] == 21
    ntime = int(out[-1]["params"][7], 16)
    en2, nonce = grind(job, new_en1, min_difficulty=1e-9, ntime=ntime)
    assert send(session, submit("acct.nh", new_job_id, en2, ntime, nonce, request_id=9))[0]["result"] is True


def test_multi_version_and_capabilities_get_no_reply() -> None:
    session = new_session(config(), TestJobSource())
    assert send(session, {"id": 5, "method": "mining.multi_version", "params": [1]}) == []
    assert send(session, {"id": 6, "method": "mining.capabilities", "params": [{}]}) == []
    unknown = send(session, {"id": 7, "method": "mining.frobnicate", "params": []})
    assert unknown[0]["error"][0] == 20 and unknown[0]["result"] is False


def test_configure_every_extension_answered_and_string_min_bit_count() -> None:
    session = new_session(config(difficulty=1024, min_difficulty=1), TestJobSource())
    out = send(session, {"id": "cfg", "method": "mining.configure", "params": [
        ["version-rolling", "minimum-difficulty", "subscribe-extranonce", "info", "x-unknown"],
        {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": "16",
         "minimum-difficulty.value": 2048, "info.hw-version": "S21", "info.connection-url": "stratum+tcp://x"}]})
    assert out == [{"id": "cfg", "error": None, "result": {
        "version-rolling": True, "version-rolling.mask": "1fffe000", "minimum-difficulty": True,
        "subscribe-extranonce": True, "info": True, "x-unknown": False}}]
    assert session.suggested_floor == 2048 and session.extranonce_subscribed
    assert session.info["hw-version"] == "S21"
    # A mask with no bit in common: false, not true with 00000000 (BIP310).
    other = new_session(config(), TestJobSource())
    out = send(other, {"id": 1, "method": "mining.configure",
                       "params": [["version-rolling"], {"version-rolling.mask": "00001fff"}]})
    assert out[0]["result"] == {"version-rolling": False}


def test_authorize_password_difficulty_and_many_workers() -> None:
    jobs = TestJobSource()
    jobs.publish(make_job("f1"))
    cfg = config(difficulty=1024, min_difficulty=1, limits=config().limits)
    session = new_session(cfg, jobs)
    send(session, {"id": 1, "method": "mining.subscribe", "params": []})
    out = send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.a", "x,d=65536"]})
    assert out[1] == {"id": None, "method": "mining.set_difficulty", "params": [65536]}
    assert session.fixed_difficulty == 65536
    bad = send(session, {"id": 3, "method": "mining.authorize", "params": ["bad.worker", "x"]})
    assert bad[0]["error"][0] == 24 and bad[0]["result"] is False
    for i in range(5):
        assert send(session, {"id": 10 + i, "method": "mining.authorize", "params": [f"acct.w{i}"]})[0]["result"]
    assert len(session.workers) == 6 and session.farm_proxy


def test_first_notify_always_follows_a_set_difficulty() -> None:
    jobs = TestJobSource()
    jobs.publish(make_job("g1"))
    # 1024 is the port's start difficulty: a suggestion of 2048 followed by d=1024 lands back on it.
    for password, expected in (("x", 2048), ("d=1024", 1024), ("md=1024", 2048)):
        session = new_session(config(difficulty=1024, min_difficulty=1), jobs)
        send(session, {"id": 1, "method": "mining.suggest_difficulty", "params": [2048]})
        send(session, {"id": 2, "method": "mining.subscribe", "params": []})
        out = send(session, {"id": 3, "method": "mining.authorize", "params": ["acct.g", password]})
        assert [o.get("method") for o in out] == [None, "mining.set_difficulty", "mining.notify"], password
        assert out[1]["params"] == [expected]
