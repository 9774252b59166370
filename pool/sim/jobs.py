"""Jobs without a node: a JobSource fed by hand, and a Job from the wire params of a real
mining.notify (the vectors and transcripts). For the stratum server's benchmarks and tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pool.chain.types import BlockCandidate, Job
from pool.native import prepare_job, sha256d
from pool.native.work import target_from_nbits
from pool.stratum import messages as m

__all__ = ["MemoryJobSource", "bip34_height", "job_from_notify"]


class MemoryJobSource:
    """A pool.chain.types.JobSource over jobs published by hand: current job per payout key, lookup
    limited to the tip's and the previous tip's jobs, staleness by prevhash, listeners, and a
    submit_block that re-derives the header from the candidate and records whether its hash matches."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.current: dict[str, Job] = {}
        self.tip = b""
        self.previous_tip = b""
        self.listeners: list[Callable[[bool], None]] = []
        self.submitted: list[tuple[BlockCandidate, bool]] = []

    def publish(self, job: Job, payout_key: str = "") -> None:
        if job.prevhash != self.tip:
            self.previous_tip, self.tip = self.tip, job.prevhash
        self.jobs[job.job_id] = job
        self.current[payout_key] = job
        for listener in list(self.listeners):
            listener(job.clean_jobs)

    def current_job(self, payout_key: str = "") -> Job | None:
        return self.current.get(payout_key) or self.current.get("")

    def lookup(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.prevhash not in (self.tip, self.previous_tip):
            return None
        return job

    def is_stale(self, job: Job) -> bool:
        return job.prevhash != self.tip

    def add_listener(self, callback: Callable[[bool], None]) -> None:
        self.listeners.append(callback)

    async def submit_block(self, candidate: BlockCandidate) -> None:
        job = self.jobs[candidate.job_id]
        coinbase = job.coinb1 + candidate.extranonce1 + candidate.extranonce2 + job.coinb2
        root = sha256d(coinbase)
        for branch in job.merkle_branches:
            root = sha256d(root + branch)
        header = (candidate.version.to_bytes(4, "little") + job.prevhash + root
                  + candidate.ntime.to_bytes(4, "little") + job.nbits.to_bytes(4, "little")
                  + candidate.nonce.to_bytes(4, "little"))
        self.submitted.append((candidate, sha256d(header) == candidate.header_hash))


def job_from_notify(params: list[Any], *, extranonce_size: int, height: int | None = None, job_id: str | None = None,
                    created_at: float = 0.0, clean: bool | None = None) -> Job:
    """A Job from the wire params of a real mining.notify."""
    wire_id, prevhash, coinb1, coinb2, branches, version, nbits, ntime, clean_jobs = params[:9]
    nbits_int = int(nbits, 16)
    branch_bytes = tuple(bytes.fromhex(b) for b in branches)
    prev = m.internal_prevhash(prevhash)
    return Job(
        job_id=job_id or wire_id, prevhash=prev, coinb1=bytes.fromhex(coinb1), coinb2=bytes.fromhex(coinb2),
        merkle_branches=branch_bytes, version=int(version, 16), nbits=nbits_int, ntime=int(ntime, 16),
        height=bip34_height(bytes.fromhex(coinb1)) if height is None else height,
        clean_jobs=clean_jobs if clean is None else clean,
        network_target=target_from_nbits(nbits_int), extranonce_size=extranonce_size, created_at=created_at,
        template_id=f"t-{wire_id}",
        prepared=prepare_job(bytes.fromhex(coinb1), bytes.fromhex(coinb2), b"".join(branch_bytes), prev,
                             int(version, 16), nbits_int))


def bip34_height(coinb1: bytes) -> int:
    """Height from the BIP34 push at the start of the coinbase scriptSig (0 when absent)."""
    if len(coinb1) < 43:
        return 0
    script = coinb1[42:]
    size = script[0]
    if 0x51 <= size <= 0x60:
        return size - 0x50
    if 1 <= size <= 8 and len(script) > size:
        return int.from_bytes(script[1 : 1 + size], "little")
    return 0
