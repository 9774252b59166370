"""mining.submit, the hot path: the submit budget (a token bucket), the checks that need the
session (subscribed, worker, job sent here, the ntime window), the judging itself (judge.py), and what
follows: a BlockCandidate and a ShareRecord in `events`, the `true` reply, vardiff; or a reject and
the ban windows it counts against (limits.ban_*, reject_budget_*).

A share's `true` reply waits in `out` until the asyncio layer has handed its record to the ledger: if
that raised, `share_not_recorded` turns the reply into a reject (issue 10, defect 1).
"""

from __future__ import annotations

from typing import Any

import msgspec

from pool.chain.types import BlockCandidate
from pool.native.work import DIFF1_TARGET
from pool.stratum import messages as m
from pool.stratum.events import ShareRecord
from pool.stratum.judge import judge, parse_submit
from pool.stratum.session_core import SessionCore
from pool.stratum.session_records import WorkerStats

__all__ = ["share_not_recorded", "submit"]

_submit_params = msgspec.json.Decoder(m.SubmitParams)


def submit(session: SessionCore, msg: m.Envelope, now: float) -> None:
    rid = msg.id
    session.submits += 1
    limits = session.config.limits
    tokens = session._tokens
    if now > session._tokens_at:       # a clock stepping back must not drain the bucket
        tokens += (now - session._tokens_at) * limits.submits_per_second
        if tokens > limits.submit_burst:
            tokens = limits.submit_burst
        session._tokens_at = now
    if tokens < 1.0:
        session._tokens = tokens
        _reject(session, rid, m.RATE_LIMITED, None, now)
        return
    session._tokens = tokens - 1.0
    try:
        p = _submit_params.decode(msg.params)
    except m.DECODE_ERRORS:
        _reject(session, rid, m.MALFORMED, None, now)
        return
    if not session.subscribed:
        _reject(session, rid, m.NOT_SUBSCRIBED_YET, None, now)
        return
    worker = session.workers.get(p.worker)
    if worker is None:
        _reject(session, rid, m.UNAUTHORIZED_WORKER, None, now)
        return
    sent = session.sent_jobs.get(p.job_id)
    if sent is None:
        _reject(session, rid, m.UNKNOWN_JOB, worker, now)
        return
    mask = session.version_mask
    if mask is None and session._lenient_rolling:
        mask = session._pool_mask
    fields = parse_submit(p.extranonce2, p.ntime, p.nonce, p.version_bits, session.extranonce2_size, mask)
    if type(fields) is m.Reject:
        _reject(session, rid, fields, worker, now)
        return
    job = sent.job
    jobs = session.jobs
    if jobs.lookup(job.job_id) is None:
        _reject(session, rid, m.UNKNOWN_JOB, worker, now)
        return
    seen = session._seen.get(job.job_id)
    if seen is None:
        seen = session._seen[job.job_id] = set()
        if len(session._seen) > session.config.max_jobs_per_connection:
            del session._seen[next(iter(session._seen))]
    ntime_high = sent.ntime + session.config.ntime_forward_seconds
    future = int(now) + session.config.max_future_seconds
    if future < ntime_high:
        ntime_high = future
    reject, header_hash, is_block = judge(
        job.prepared, session.extranonce1, fields, mask or 0, sent.target,
        stale=jobs.is_stale(job), ntime_low=job.ntime, ntime_high=ntime_high, seen=seen)
    block_hash = ""
    if is_block:
        block_hash = header_hash[::-1].hex()
        version = (job.version & ~(mask or 0)) | (fields.version_bits & (mask or 0))
        session.events.append(BlockCandidate(
            job_id=job.job_id, template_id=job.template_id, extranonce1=session.extranonce1,
            extranonce2=fields.extranonce2, ntime=fields.ntime, nonce=fields.nonce, version=version,
            header_hash=header_hash, height=job.height, worker=worker.name, account=worker.account,
            found_at=now))
        worker.blocks += 1
        session.counters.blocks += 1
    if reject is not None:
        _reject(session, rid, reject, worker, now)
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
        country=session.country, subdivision=session.subdivision, hosting=session.hosting,
        farm_proxy=session.farm_proxy, firmware=session.firmware, node=session.node, block_hash=block_hash,
        authorized_at=worker.authorized_at)
    session.events.append(record)
    worker.accepted += 1
    worker.accepted_difficulty += difficulty
    worker.last_share_at = now
    counters = session.counters
    counters.accepted += 1
    counters.accepted_difficulty += difficulty
    session._window_total += 1
    out = session.out
    if not out:
        session._acks.clear()       # positions in an `out` already written are meaningless
    session._acks.append((record, len(out), rid, worker, best_before))
    out.append(m.true_reply(rid))
    if session.fixed_difficulty is None and session.port.vardiff:
        current = session.difficulty if session.pending_difficulty is None else session.pending_difficulty
        new = session.vardiff.on_share(difficulty, current, session.suggested_floor, now)
        if new is not None:
            session._set_difficulty(new, now, reissue=True)


def share_not_recorded(session: SessionCore, record: ShareRecord) -> bool:
    """The consumer could not make `record` durable (its journal write raised): its `true` reply,
    still in `out`, becomes a reject, the share is counted as rejected ("not_recorded"), not
    accepted, and is nobody's best share. False if the record is not one of the
    acknowledgements waiting in `out` (or was already taken back)."""
    acks = session._acks
    found = next((i for i, ack in enumerate(acks) if ack[0] is record), None)
    if found is None:
        return False
    _, index, rid, worker, _ = acks[found]
    acks[found] = (None, index, rid, worker, acks[found][4])     # taken back; its best_before stays
    session.out[index] = m.NOT_RECORDED.reply(rid)
    worker.accepted -= 1
    worker.accepted_difficulty -= record.difficulty
    counters = session.counters
    counters.accepted -= 1
    counters.accepted_difficulty -= record.difficulty
    _count_reject(session, m.NOT_RECORDED.key, worker)
    # The best is what the worker had before this read's first share, or a share still kept.
    mine = [ack for ack in acks if ack[3] is worker]
    worker.best_difficulty = max([mine[0][4]] + [ack[0].share_difficulty for ack in mine if ack[0] is not None])
    return True


def _count_reject(session: SessionCore, key: str, worker: WorkerStats | None) -> None:
    book = worker.rejected if worker is not None else session.rejected
    book[key] = book.get(key, 0) + 1
    counters = session.counters
    rejected = counters.rejected
    rejected[key] = rejected.get(key, 0) + 1
    if worker is not None:                  # for the ledger's per-worker books
        pending = counters.worker_rejects.get(worker.name)
        if pending is None:
            pending = counters.worker_rejects[worker.name] = {}
        pending[key] = pending.get(key, 0) + 1


def _reject(session: SessionCore, rid: Any, reject: m.Reject, worker: WorkerStats | None, now: float) -> None:
    session.out.append(reject.reply(rid))
    key = reject.key
    _count_reject(session, key, worker)
    session.rejects += 1
    limits = session.config.limits
    if now - session._window_start > limits.ban_window_seconds:
        session._window_start = now
        session._window_total = 0
        session._window_invalid = 0
        session._window_rejects = 0
    session._window_total += 1
    session._window_rejects += 1
    if (session._window_rejects >= limits.reject_budget_per_connection
            and session._window_rejects >= limits.reject_budget_ratio * session._window_total):
        session.ban_reason = session.close_reason = "reject budget exceeded"
        return
    if key in m.HONEST_REJECTS:
        return
    session._window_invalid += 1
    if (session._window_invalid >= limits.ban_invalid_shares
            and session._window_invalid >= limits.ban_invalid_ratio * session._window_total):
        session.ban_reason = session.close_reason = "flood of invalid shares"
