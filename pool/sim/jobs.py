"""Jobs without a node: a JobSource fed by hand, a Job from the wire params of a real mining.notify
(the vectors and transcripts), and a Job around a coinbase built here. For the stratum server's
benchmarks, load generators and tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from pool.chain.types import BlockCandidate, Job
from pool.native import prepare_job, sha256d
from pool.native.work import target_from_nbits
from pool.stratum import messages as m

__all__ = ["HARD_NBITS", "MemoryJobSource", "bip34_height", "job_from_notify", "make_job"]

HARD_NBITS = 0x17029A8A          # mainnet 2025: no share at a pool difficulty is a block by accident


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


def _push_height(height: int) -> bytes:
    raw = height.to_bytes((height.bit_length() + 8) // 8, "little")
    return bytes([len(raw)]) + raw


def make_job(job_id: str, *, prevhash: bytes | None = None, height: int = 900_000, nbits: int = HARD_NBITS,
             ntime: int = 1_760_000_000, extranonce2_size: int = 8, branches: int = 3, clean: bool = True,
             version: int = 0x20000000, created_at: float = 0.0, coinbase_pad: int = 0) -> Job:
    """A Job around a coinbase built here: BIP34 height, extranonce window, a pool tag, one P2WPKH
    output; merkle siblings derived from the job id."""
    prevhash = prevhash or hashlib.sha256(b"prev" + str(height).encode()).digest()
    window = 4 + extranonce2_size
    tag = b"/geostratum-test/"
    script_len = len(_push_height(height)) + window + 1 + len(tag)
    coinb1 = (b"\x01\x00\x00\x00" + b"\x01" + b"\x00" * 32 + b"\xff\xff\xff\xff"
              + _varint(script_len) + _push_height(height))
    outputs = [(312_500_000).to_bytes(8, "little") + b"\x16\x00\x14" + hashlib.sha256(job_id.encode()).digest()[:20]]
    if coinbase_pad:       # a big OP_RETURN output: makes notify lines large (slow-reader tests)
        outputs.append(b"\x00" * 8 + _varint(coinbase_pad + 1) + b"\x6a" + b"\x00" * coinbase_pad)
    coinb2 = (bytes([len(tag)]) + tag + b"\xfe\xff\xff\xff" + bytes([len(outputs)]) + b"".join(outputs)
              + (height - 1).to_bytes(4, "little"))
    siblings = tuple(hashlib.sha256(f"{job_id}/{i}".encode()).digest() for i in range(branches))
    return Job(job_id=job_id, prevhash=prevhash, coinb1=coinb1, coinb2=coinb2, merkle_branches=siblings,
               version=version, nbits=nbits, ntime=ntime, height=height, clean_jobs=clean,
               network_target=target_from_nbits(nbits), extranonce_size=window, created_at=created_at,
               template_id=f"t-{job_id}",
               prepared=prepare_job(coinb1, coinb2, b"".join(siblings), prevhash, version, nbits))


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    return b"\xfd" + n.to_bytes(2, "little") if n <= 0xFFFF else b"\xfe" + n.to_bytes(4, "little")
