"""Judging submits through the session: real mainnet vectors, real transcripts, and the rules of §7.2."""

from __future__ import annotations

import json

import pytest

from pool.native.work import DIFF1_TARGET
from pool.stratum.events import ShareRecord
from tests.stratum.support import (
    EASY_NBITS,
    NOW,
    TestJobSource,
    config,
    grind,
    job_from_notify,
    make_job,
    new_session,
    push,
    send,
    submit,
    take,
    transcript,
    vectors,
)

VECTORS = vectors()


def vector_session(block: dict, difficulty: float) -> tuple:
    stratum = block["stratum"]
    sub = stratum["subscribe_result"]
    jobs = TestJobSource()
    job = job_from_notify(stratum["notify_params"], extranonce_size=4 + sub["extranonce2_size"],
                          height=block["block"]["height"])
    jobs.publish(job)
    cfg = config(difficulty=difficulty, extranonce2_size=sub["extranonce2_size"])
    now = float(job.ntime)
    session = new_session(cfg, jobs, extranonce1=sub["extranonce1"], now=now)
    send(session, {"id": 1, "method": "mining.configure",
                   "params": [["version-rolling"], {"version-rolling.mask": "1fffe000"}]}, now)
    assert send(session, {"id": 2, "method": "mining.subscribe", "params": ["vectors/1"]}, now)[0]["result"][1] == \
        sub["extranonce1"]
    send(session, {"id": 3, "method": "mining.authorize", "params": [stratum["submit_params"][0], "x"]}, now)
    return jobs, session, now


@pytest.mark.parametrize("block", VECTORS, ids=[b["name"] for b in VECTORS])
def test_vector_block_is_accepted_and_submitted(block: dict) -> None:
    _jobs, session, now = vector_session(block, difficulty=1.0)
    out = send(session, {"id": 10, "method": "mining.submit", "params": block["stratum"]["submit_params"]}, now)
    assert out == [{"id": 10, "result": True, "error": None}]
    candidates = [e for e in session.events if type(e).__name__ == "BlockCandidate"]
    records = [e for e in session.events if isinstance(e, ShareRecord)]
    assert len(candidates) == 1 and len(records) == 1
    expected = block["expected"]
    assert candidates[0].header_hash[::-1].hex() == expected["block_hash"]
    assert f"{candidates[0].version:08x}" == expected["block_version"]
    assert records[0].block_hash == expected["block_hash"]
    assert records[0].share_difficulty == pytest.approx(expected["share_difficulty"], rel=1e-9)
    assert records[0].difficulty == 1.0 and records[0].height == block["block"]["height"]
    assert records[0].authorized_at == now      # where the books start observing the worker


@pytest.mark.parametrize("block", VECTORS, ids=[b["name"] for b in VECTORS])
def test_vector_negatives(block: dict) -> None:
    for negative in block["negative"]:
        sub = negative["submit"]
        params = [sub["worker"], sub["job_id"], sub["extranonce2"], sub["ntime"], sub["nonce"]]
        if "version_bits" in sub:
            params.append(sub["version_bits"])
        expected = negative["expected"]
        for difficulty in (1.0, 1e-10):
            _, session, now = vector_session(block, difficulty)
            out = send(session, {"id": 5, "method": "mining.submit", "params": params}, now)[0]
            assert not [e for e in session.events if type(e).__name__ == "BlockCandidate"]
            if negative["name"] == "version_bits_outside_mask":
                assert out["error"][0] == 20 and out["reject-reason"] == "Invalid version bits"
            elif difficulty == 1.0:
                assert out["error"][0] == 23, negative["name"]
            else:
                # Below 1e-10 every one of these hashes is a valid share at the assigned difficulty.
                assert expected["share_difficulty"] >= 1e-10
                assert out == {"id": 5, "result": True, "error": None}, negative["name"]
                record = session.events[-1]
                assert record.share_difficulty == pytest.approx(expected["share_difficulty"], rel=1e-9)


def test_duplicate_cannot_be_replayed_with_other_hex_case_or_numbers() -> None:
    block = VECTORS[2]          # version-rolled block: all six params
    _, session, now = vector_session(block, difficulty=1.0)
    params = block["stratum"]["submit_params"]
    assert send(session, {"id": 1, "method": "mining.submit", "params": params}, now)[0]["result"] is True
    variants = [
        [p.upper() if i >= 2 else p for i, p in enumerate(params)],
        [*params[:3], int(params[3], 16), int(params[4], 16), params[5]],
        params,
    ]
    for variant in variants:
        out = send(session, {"id": 2, "method": "mining.submit", "params": variant}, now)[0]
        assert out["error"][0] == 22, variant
    assert session.workers[params[0]].rejected == {"duplicate": 3}


def test_ckpool_transcript_shares_are_accepted_at_difficulty_one() -> None:
    rows = transcript("ckpool_cpuminer_transcript.txt")
    subscribe_reply = next(r[3] for r in rows if r[1] == "conn1" and r[2] == "pool->miner" and r[3].get("id") == 1)
    extranonce1 = subscribe_reply["result"][1]
    jobs = TestJobSource()
    session = new_session(config(difficulty=1.0, min_difficulty=1.0, extranonce2_size=8), jobs,
                          extranonce1=extranonce1, now=1_700_000_000.0)
    notifies = {r[3]["params"][0]: r[3]["params"] for r in rows
                if r[1] == "conn1" and r[3].get("method") == "mining.notify"}
    checked = 0
    for seconds, conn, direction, msg in rows:
        if conn != "conn1" or direction != "miner->pool":
            continue
        now = 1_700_000_000.0 + seconds
        if msg["method"] != "mining.submit":
            send(session, msg, now)
            continue
        params = notifies[msg["params"][1]]
        job = job_from_notify(params, extranonce_size=12)
        jobs.publish(job)
        push(session, job, now=float(job.ntime))
        out = send(session, msg, now=float(job.ntime) + 5)
        assert out == [{"id": 4, "result": True, "error": None}]
        record = session.events[-1]
        assert record.difficulty == 1.0 and record.share_difficulty >= 1.0
        checked += 1
    assert checked == 3


def test_publicpool_retarget_failure_does_not_happen_here() -> None:
    """Replays public-pool's conversation with cpuminer: difficulties as public-pool sent them, one job
    after another. public-pool rejected 11 shares on job "d" after raising the difficulty with an
    unchanged job; here every share is judged at the difficulty in force when its job was sent."""
    rows = [r for r in transcript("publicpool_cpuminer_transcript.txt") if r[1] == "conn1"]
    extranonce1 = next(r[3] for r in rows if r[3].get("id") == 1 and "result" in r[3])["result"][1]
    jobs = TestJobSource()
    session = new_session(config(difficulty=0.1, min_difficulty=1e-6, extranonce2_size=4), jobs,
                          extranonce1=extranonce1, now=1_790_000_000.0)
    sent_difficulty: dict[str, float] = {}
    announced = 0.1
    verdicts = []
    for seconds, _, direction, msg in rows:
        now = 1_790_000_000.0 + seconds
        if direction == "miner->pool" and msg.get("method") != "mining.submit":
            send(session, msg, now)
        elif direction == "pool->miner" and msg.get("method") == "mining.set_difficulty":
            announced = msg["params"][0]
            session.retarget(announced, now, reissue=False)
        elif direction == "pool->miner" and msg.get("method") == "mining.notify":
            job = job_from_notify(msg["params"], extranonce_size=8)
            jobs.publish(job)
            push(session, job, now=now)
            sent_difficulty[job.job_id] = announced
        elif direction == "miner->pool":
            job_id = msg["params"][1]
            out = send(session, msg, now=float(jobs.jobs[job_id].ntime) + 5)
            verdicts.append((job_id, out[0], session.events[-1]))
    assert len(verdicts) == 28
    assert all(out == {"id": 4, "result": True, "error": None} for _, out, _ in verdicts)
    on_d = [record for job_id, _, record in verdicts if job_id == "d"]
    assert len(on_d) == 12
    # Credited at 0.0016 (in force when "d" was sent), not 0.0064 (announced later with job "e").
    assert {record.difficulty for record in on_d} == {0.0016}
    assert all(record.difficulty == sent_difficulty[job_id] for job_id, _, record in verdicts)


def test_difficulty_in_force_when_job_was_sent_decides() -> None:
    jobs = TestJobSource()
    job = make_job("j1")
    jobs.publish(job)
    # Tiny difficulties (p(share) = 2**-32 / difficulty) so the grinder finds shares at once.
    session = new_session(config(difficulty=1e-8, min_difficulty=1e-12), jobs)
    en1 = bytes.fromhex(send(session, {"id": 1, "method": "mining.subscribe", "params": []})[0]["result"][1])
    send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.x"]})
    session.retarget(4e-8, NOW, reissue=True)
    from tests.stratum.support import take
    out = take(session)
    assert [o["method"] for o in out] == ["mining.set_difficulty", "mining.notify"]
    new_id = out[1]["params"][0]
    assert new_id != "j1" and out[1]["params"][8] is True
    # A share between 1e-8 and 4e-8 on the old job is fine; the same quality on the new job is low.
    en2, nonce = grind(job, en1, min_difficulty=1e-8, max_difficulty=4e-8)
    assert send(session, submit("acct.x", "j1", en2, job.ntime, nonce))[0]["result"] is True
    ntime = int(out[1]["params"][7], 16)
    en2, nonce = grind(job, en1, min_difficulty=1e-8, max_difficulty=4e-8, ntime=ntime)
    rejected = send(session, submit("acct.x", new_id, en2, ntime, nonce))[0]
    assert rejected["error"] == [23, "Low difficulty share", None]


def test_stale_block_candidate_is_still_submitted_and_unknown_job_rejected() -> None:
    jobs = TestJobSource()
    old = make_job("s1", nbits=EASY_NBITS, height=100)
    jobs.publish(old)
    session = new_session(config(difficulty=1e-9), jobs)
    en1 = bytes.fromhex(send(session, {"id": 1, "method": "mining.subscribe", "params": []})[0]["result"][1])
    send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.x"]})
    new = make_job("s2", nbits=EASY_NBITS, height=101)
    jobs.publish(new)
    push(session, new)
    en2, nonce = grind(old, en1, min_difficulty=1e-9, not_block=False)
    from pool.native import check_share
    from pool.stratum.session_records import share_target
    _, _, is_block = check_share(old.prepared, en1, en2, old.ntime, nonce, 0, 0, share_target(1e-9))
    out = send(session, submit("acct.x", "s1", en2, old.ntime, nonce))[0]
    assert out["error"] == [21, "Stale", None]
    blocks = [e for e in session.events if type(e).__name__ == "BlockCandidate"]
    assert bool(blocks) == is_block
    assert send(session, submit("acct.x", "nope", en2, old.ntime, nonce))[0]["error"][0] == 21


def test_field_rules() -> None:
    jobs = TestJobSource()
    job = make_job("r1")
    jobs.publish(job)
    session = new_session(config(difficulty=1e-9, version_rolling_without_configure="reject"), jobs)
    en1 = bytes.fromhex(send(session, {"id": 1, "method": "mining.subscribe", "params": []})[0]["result"][1])
    assert send(session, submit("acct.x", "r1", b"\0" * 8, job.ntime, 1))[0]["error"][0] == 24
    send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.x"]})
    en2, nonce = grind(job, en1, min_difficulty=1e-9)
    cases = {
        "short extranonce2": ["acct.x", "r1", en2.hex()[:-2], f"{job.ntime:08x}", f"{nonce:08x}"],
        "non-hex extranonce2": ["acct.x", "r1", "zz" * 8, f"{job.ntime:08x}", f"{nonce:08x}"],
        "ntime 0x prefix": ["acct.x", "r1", en2.hex(), "0x" + f"{job.ntime:08x}"[2:], f"{nonce:08x}"],
        "nonce 7 digits": ["acct.x", "r1", en2.hex(), f"{job.ntime:08x}", f"{nonce:07x}"[:7]],
        "rolling without configure": ["acct.x", "r1", en2.hex(), f"{job.ntime:08x}", f"{nonce:08x}", "00002000"],
        "ntime too far ahead": ["acct.x", "r1", en2.hex(), f"{job.ntime + 7001:08x}", f"{nonce:08x}"],
        "ntime before job": ["acct.x", "r1", en2.hex(), f"{job.ntime - 1:08x}", f"{nonce:08x}"],
        "wrong types": ["acct.x", "r1", 5, [], {}],
        "four params": ["acct.x", "r1", en2.hex(), f"{job.ntime:08x}"],
    }
    for name, params in cases.items():
        out = send(session, {"id": name, "method": "mining.submit", "params": params})
        assert out[0]["id"] == name and out[0]["result"] is False and out[0]["error"][0] == 20, name
    assert sum(session.workers["acct.x"].rejected.values()) + sum(session.rejected.values()) == len(cases) + 1
    assert session.rejected["unauthorized"] == 1
    # The "pool_mask" policy judges rolled bits of a miner that never sent mining.configure.
    lenient = new_session(config(difficulty=1e-9), jobs)
    en1 = bytes.fromhex(send(lenient, {"id": 1, "method": "mining.subscribe", "params": []})[0]["result"][1])
    send(lenient, {"id": 2, "method": "mining.authorize", "params": ["acct.x"]})
    en2, nonce = grind(job, en1, min_difficulty=1e-9, version_bits=0x2000, mask=0x1FFFE000)
    assert send(lenient, submit("acct.x", "r1", en2, job.ntime, nonce, 0x2000))[0]["result"] is True
    assert send(lenient, submit("acct.x", "r1", en2, job.ntime, nonce, 0x40000000))[0]["error"][0] == 20


def test_rate_limit_and_invalid_flood_ban() -> None:
    from pool.config.stratum import LimitsConfig
    jobs = TestJobSource()
    jobs.publish(make_job("f1"))
    limits = LimitsConfig(submits_per_second=10, submit_burst=5, ban_invalid_shares=20, ban_invalid_ratio=0.9)
    session = new_session(config(difficulty=1.0, limits=limits), jobs)
    send(session, {"id": 1, "method": "mining.subscribe", "params": []})
    send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.x"]})
    codes = [send(session, submit("acct.x", "f1", b"\0" * 8, 1_760_000_000, i), NOW)[0]["reject-reason"]
             for i in range(8)]
    assert codes[:5] == ["Low difficulty share"] * 5 and codes[5:] == ["Too many submits"] * 3
    assert session.ban_reason is None
    t = NOW
    for i in range(40):
        t += 0.2
        send(session, submit("acct.x", "f1", b"\0" * 8, 1_760_000_000, 100 + i), t)
        if session.ban_reason:
            break
    assert session.ban_reason == "flood of invalid shares" and session.close_reason


def test_share_difficulty_matches_diff1_over_hash() -> None:
    jobs = TestJobSource()
    job = make_job("h1")
    jobs.publish(job)
    session = new_session(config(difficulty=1e-8), jobs)
    en1 = bytes.fromhex(send(session, {"id": 1, "method": "mining.subscribe", "params": []})[0]["result"][1])
    send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.x"]})
    en2, nonce = grind(job, en1, min_difficulty=1e-8)
    send(session, submit("acct.x", "h1", en2, job.ntime, nonce))
    record = session.events[-1]
    from pool.native import check_share
    from pool.stratum.session_records import share_target
    digest, _, _ = check_share(job.prepared, en1, en2, job.ntime, nonce, 0, 0, share_target(1e-8))
    assert record.share_difficulty == DIFF1_TARGET / int.from_bytes(digest, "little")
    assert record.share_difficulty >= 1e-8 and record.difficulty == 1e-8


def test_a_share_that_could_not_be_recorded_is_not_acknowledged() -> None:
    """Three shares in one read; the consumer fails on the middle one: its reply (still unwritten)
    becomes a reject in place, the others stay acknowledged, and the books count it as rejected."""
    jobs = TestJobSource()
    job = make_job("d1")
    jobs.publish(job)
    session = new_session(config(difficulty=1e-9), jobs)
    en1 = bytes.fromhex(send(session, {"id": 1, "method": "mining.subscribe", "params": []})[0]["result"][1])
    send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.x"]})
    session.events.clear()
    start = 0
    for request_id in (10, 11, 12):
        en2, nonce = grind(job, en1, min_difficulty=1e-9, start=start)
        start = nonce + 1
        session.receive_line(json.dumps(submit("acct.x", "d1", en2, job.ntime, nonce, request_id=request_id))
                             .encode(), NOW)
    records = [e for e in session.events if isinstance(e, ShareRecord)]
    assert len(records) == 3
    assert session.share_not_recorded(records[1])
    assert not session.share_not_recorded(records[1])       # once only
    replies = [json.loads(line) for line in b"".join(session.out).splitlines()]
    assert [(r["id"], r["result"]) for r in replies] == [(10, True), (11, False), (12, True)]
    assert replies[1]["error"] == [20, "Share not recorded", None]
    worker = session.workers["acct.x"]
    assert worker.accepted == 2 and worker.rejected == {"not_recorded": 1}
    assert worker.accepted_difficulty == pytest.approx(2e-9)
    assert session.counters.accepted == 2 and session.counters.rejected == {"not_recorded": 1}
    assert worker.best_difficulty == max(records[0].share_difficulty, records[2].share_difficulty)
    assert session.share_not_recorded(records[2]) and session.share_not_recorded(records[0])
    assert worker.best_difficulty == 0.0 and worker.accepted == 0    # nothing kept, no best share
    assert worker.accepted_difficulty == pytest.approx(0.0, abs=1e-18)
    take(session)
    # Once `out` was written the old positions are gone: a later share starts a fresh list.
    en2, nonce = grind(job, en1, min_difficulty=1e-9, start=start)
    send(session, submit("acct.x", "d1", en2, job.ntime, nonce, request_id=13))
    assert not session.share_not_recorded(records[0])
