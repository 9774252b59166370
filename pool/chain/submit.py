"""Block candidate -> full block (witness coinbase included) -> submitblock to every node at once."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Sequence

import msgspec

from pool.bitcoin.encoding import ByteReader, DecodeError, internal_to_display, sha256d, varint
from pool.chain.coinbase import witness_serialization
from pool.chain.merkle import fold_branch
from pool.chain.rpc import ChainBackend, RpcError
from pool.chain.template import PreparedTemplate
from pool.chain.tx import parse_transaction
from pool.chain.types import BlockCandidate, BlockResult, Job

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
INCONCLUSIVE = "inconclusive"

__all__ = ["AssembledBlock", "AssemblyError", "BlockSubmitter", "assemble_block"]


class AssemblyError(ValueError):
    """The candidate does not rebuild into the block the share claimed (a bug or a forged candidate)."""


class AssembledBlock(msgspec.Struct, frozen=True, kw_only=True):
    header: bytes
    block: bytes
    block_hash: bytes  # internal order
    coinbase: bytes  # legacy serialization (its sha256d is the coinbase txid)
    coinbase_value: int

    @property
    def hash_hex(self) -> str:
        return internal_to_display(self.block_hash)

    @property
    def block_hex(self) -> str:
        return self.block.hex()


def assemble_block(template: PreparedTemplate, job: Job, candidate: BlockCandidate) -> AssembledBlock:
    """Rebuild header and block from the job the share was made on; the hash must match the share's."""
    if job.template_id != template.template_id:
        raise AssemblyError(f"job {job.job_id} belongs to template {job.template_id}, not {template.template_id}")
    extranonce = candidate.extranonce1 + candidate.extranonce2
    if len(extranonce) != job.extranonce_size:
        raise AssemblyError(f"extranonce is {len(extranonce)} bytes, job {job.job_id} expects {job.extranonce_size}")
    coinbase = job.coinb1 + extranonce + job.coinb2
    root = fold_branch(sha256d(coinbase), job.merkle_branches)
    header = (
        struct.pack("<I", candidate.version & 0xFFFFFFFF)
        + job.prevhash
        + root
        + struct.pack("<III", candidate.ntime, job.nbits, candidate.nonce)
    )
    block_hash = sha256d(header)
    if block_hash != candidate.header_hash:
        raise AssemblyError(
            f"rebuilt header hashes to {internal_to_display(block_hash)}, "
            f"the share said {internal_to_display(candidate.header_hash)}"
        )
    if int.from_bytes(block_hash, "little") > job.network_target:
        raise AssemblyError(f"block hash {internal_to_display(block_hash)} is above the network target")
    try:
        value = sum(out.value for out in parse_transaction(ByteReader(coinbase)).outputs)
    except DecodeError as exc:
        raise AssemblyError(f"the coinbase does not parse: {exc}") from None
    serialized_coinbase = (
        witness_serialization(coinbase) if template.witness_commitment_script is not None else coinbase
    )
    block = header + varint(1 + template.tx_count) + serialized_coinbase + template.transactions_data
    return AssembledBlock(header=header, block=block, block_hash=block_hash, coinbase=coinbase,
                          coinbase_value=value)


class BlockSubmitter:
    """submitblock to every node concurrently (one request each, never batched), transport errors
    retried, each node's verdict kept; then confirmation by getblockhash(height) / getbestblockhash."""

    def __init__(
        self,
        nodes: Sequence[ChainBackend],
        *,
        retries: int = 5,
        retry_delay: float = 0.25,
        confirm_delay: float = 0.5,
    ) -> None:
        if not nodes:
            raise ValueError("a BlockSubmitter needs at least one node")
        self.nodes = list(nodes)
        self.retries = retries
        self.retry_delay = retry_delay
        self.confirm_delay = confirm_delay

    async def _submit_to(self, node: ChainBackend, block_hex: str) -> str:
        attempt = 0
        while True:
            try:
                verdict = await node.submitblock(block_hex)
            except RpcError as exc:
                if exc.retryable and attempt < self.retries:
                    attempt += 1
                    log.warning("submitblock to %s failed (%s); retry %d/%d", node.name, exc.message,
                                attempt, self.retries)
                    await asyncio.sleep(self.retry_delay * attempt)
                    continue
                return f"rpc-error {exc.code}: {exc.message}" if exc.code is not None else f"error: {exc.message}"
            except Exception as exc:  # a bug in a backend must not lose the block on the other nodes
                log.exception("submitblock to %s raised", node.name)
                return f"error: {exc!r}"
            return ACCEPTED if verdict is None else verdict

    async def _confirmed_on(self, node: ChainBackend, height: int, hash_hex: str) -> bool:
        try:
            if await node.getblockhash(height) == hash_hex:
                return True
        except RpcError:
            pass  # -8 height out of range: the node has not connected it (yet)
        try:
            return await node.getbestblockhash() == hash_hex
        except RpcError:
            return False

    async def confirm(self, height: int, hash_hex: str) -> bool:
        checks = await asyncio.gather(*(self._confirmed_on(n, height, hash_hex) for n in self.nodes))
        return any(checks)

    async def submit(self, block: AssembledBlock, candidate: BlockCandidate, job: Job) -> BlockResult:
        block_hex = block.block_hex
        hash_hex = block.hash_hex
        submitted_at = time.time()
        verdicts = await asyncio.gather(*(self._submit_to(n, block_hex) for n in self.nodes))
        node_results = {node.name: verdict for node, verdict in zip(self.nodes, verdicts, strict=True)}
        taken = any(v in (ACCEPTED, DUPLICATE) for v in verdicts)
        confirmed = False
        if taken or INCONCLUSIVE in verdicts:
            confirmed = await self.confirm(candidate.height, hash_hex)
            if not confirmed and self.confirm_delay > 0:
                await asyncio.sleep(self.confirm_delay)
                confirmed = await self.confirm(candidate.height, hash_hex)
        level = logging.INFO if taken or confirmed else logging.WARNING
        log.log(level, "block %s at height %d by %s: %s (confirmed=%s)", hash_hex, candidate.height,
                candidate.worker, node_results, confirmed)
        return BlockResult(
            height=candidate.height,
            block_hash=hash_hex,
            prevhash=internal_to_display(job.prevhash),
            worker=candidate.worker,
            account=candidate.account,
            payout_key=job.payout_key,
            accepted=taken or confirmed,
            confirmed=confirmed,
            node_results=node_results,
            found_at=candidate.found_at,
            submitted_at=submitted_at,
            coinbase_value=block.coinbase_value,
            job_id=job.job_id,
        )
