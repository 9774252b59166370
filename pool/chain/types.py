"""Plain data that flows between the chain and the stratum server: jobs and block candidates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """One unit of work as mining.notify describes it, plus what the pool needs to judge it.

    Byte strings are raw bytes; hashes are in internal (header) byte order.
    """

    job_id: str
    prevhash: bytes                    # 32 bytes, internal order (as in the header)
    coinb1: bytes                      # legacy coinbase bytes before extranonce1
    coinb2: bytes                      # legacy coinbase bytes after extranonce2
    merkle_branches: tuple[bytes, ...]  # 32-byte siblings of the coinbase, internal order
    version: int                       # header version with no bits inside the rolling mask
    nbits: int
    ntime: int
    height: int
    clean_jobs: bool
    network_target: int
    extranonce_size: int               # len(extranonce1) + len(extranonce2) the coinbase was cut for
    created_at: float
    template_id: str                   # identifies the template (block assembly finds its transactions)
    payout_key: str = ""               # "" for the pool payout, else the SOLO finder's address
    prepared: Any = None               # pool.native PreparedJob, built once per job


class BlockCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """A share whose hash met the network target: everything needed to rebuild the block."""

    job_id: str
    template_id: str
    extranonce1: bytes
    extranonce2: bytes
    ntime: int
    nonce: int
    version: int                       # the full header version actually hashed
    header_hash: bytes                 # internal order
    height: int
    worker: str
    account: str
    found_at: float


class JobSource(Protocol):
    """What the stratum server needs from pool.chain (implemented by pool.chain.jobs.JobManager)."""

    def current_job(self, payout_key: str = "") -> Job | None:
        """The newest job; in SOLO mode one per payout address (built on demand, cached)."""

    def lookup(self, job_id: str) -> Job | None:
        """A job still accepted for submits (current prevhash, or the grace list)."""

    def is_stale(self, job: Job) -> bool:
        """True when the job's prevhash is no longer the tip."""

    def add_listener(self, callback: Callable[[bool], None]) -> None:
        """callback(clean_jobs) whenever new work is ready (clean_jobs=True on a new block)."""

    async def submit_block(self, candidate: BlockCandidate) -> None:
        """Assemble and submit at once to every node; records the result; never raises."""


class BlockResult(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to a block candidate: built by pool.chain, recorded by the ledger."""

    height: int
    block_hash: str                    # display order (as explorers and RPC print it)
    prevhash: str                      # display order
    worker: str
    account: str
    payout_key: str                    # "" in pool mode, the finder's address in SOLO mode
    accepted: bool                     # some node took it (null, "duplicate" or confirmed on-chain)
    confirmed: bool                    # seen as the block at its height / the tip after submitting
    node_results: dict[str, str]       # node name -> "accepted" | "duplicate" | "inconclusive" | reason
    found_at: float
    submitted_at: float
    coinbase_value: int                # satoshis the coinbase pays in total
    job_id: str = ""
    error: str = ""                    # set when the block could not even be assembled

    @property
    def refusal(self) -> str:
        """Why no node took it, as the node said it ("bad-txnmrklroot"; "a: high-hash; b: inconclusive"
        when nodes differ); "" for an accepted block."""
        if self.accepted:
            return ""
        if self.error:
            return self.error
        verdicts = set(self.node_results.values())
        if len(verdicts) == 1:
            return verdicts.pop()
        return "; ".join(f"{node}: {verdict}" for node, verdict in sorted(self.node_results.items())) or "refused"
