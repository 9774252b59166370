"""Test helpers: mine real shares with pool.native and build deliberately broken devnet blocks."""

from __future__ import annotations

import struct
import time

from pool.bitcoin.encoding import display_to_internal, sha256d, varint
from pool.chain.coinbase import CoinbaseOutput, build_coinbase, witness_serialization
from pool.chain.devnet import Devnet
from pool.chain.merkle import merkle_root, witness_commitment, witness_commitment_script
from pool.chain.types import BlockCandidate, Job
from pool.native import check_share
from pool.native.work import target_bytes, target_from_nbits

MAX_TARGET_BYTES = target_bytes((1 << 256) - 1)


def mine_candidate(job: Job, extranonce1: bytes = b"\x00\x00\x00\x01", *, worker: str = "rig1",
                   account: str = "alice", start_nonce: int = 0) -> BlockCandidate:
    """Grind nonces through the native share check until one meets the job's network target."""
    extranonce2 = bytes(job.extranonce_size - len(extranonce1))
    for nonce in range(start_nonce, start_nonce + 1_000_000):
        digest, _, is_block = check_share(job.prepared, extranonce1, extranonce2, job.ntime, nonce, 0, 0,
                                          MAX_TARGET_BYTES)
        if is_block:
            return BlockCandidate(
                job_id=job.job_id, template_id=job.template_id, extranonce1=extranonce1, extranonce2=extranonce2,
                ntime=job.ntime, nonce=nonce, version=job.version, header_hash=digest, height=job.height,
                worker=worker, account=account, found_at=time.time(),
            )
    raise AssertionError("no block in a million nonces at a trivial target")


def raw_block(
    devnet: Devnet,
    *,
    height: int | None = None,
    value_delta: int = 0,
    commitment: bytes | None = None,
    with_commitment: bool = True,
    reserved_value: bytes = bytes(32),
    prevhash: bytes | None = None,
    nbits: int | None = None,
    ntime: int | None = None,
    extra_tx: bytes | None = None,
    swap_root: bool = False,
    above_target: bool = False,
    tag: bytes = b"test",
) -> bytes:
    """A block on the devnet's current template, broken in exactly the way asked; PoW ground to match
    (below the header's own target, or above it with above_target)."""
    gbt = devnet.template()
    height = gbt["height"] if height is None else height
    txs = [bytes.fromhex(t["data"]) for t in gbt["transactions"]]
    txids = [display_to_internal(t["txid"]) for t in gbt["transactions"]]
    if extra_tx is not None:
        txs.append(extra_tx)
        txids.append(sha256d(extra_tx))
    script = bytes.fromhex(gbt["default_witness_commitment"])
    if extra_tx is not None:
        wtxids = [display_to_internal(t["hash"]) for t in gbt["transactions"]] + [sha256d(extra_tx)]
        script = witness_commitment_script(witness_commitment(wtxids))
    if commitment is not None:
        script = script[:6] + commitment
    split = build_coinbase(
        height=height, outputs=[CoinbaseOutput(gbt["coinbasevalue"] + value_delta, b"\x51")], extranonce_size=4,
        tag=tag, witness_commitment_script=script if with_commitment else None,
    )
    legacy = split.coinb1 + b"\x00\x00\x00\x00" + split.coinb2
    if with_commitment:
        coinbase = legacy[:4] + b"\x00\x01" + legacy[4:-4] + b"\x01" + varint(len(reserved_value)) + (
            reserved_value) + legacy[-4:]
        if reserved_value == bytes(32):
            assert coinbase == witness_serialization(legacy)
    else:
        coinbase = legacy
    root = merkle_root([sha256d(legacy), *txids])
    if swap_root:
        root = root[::-1]
    bits = devnet.nbits if nbits is None else nbits
    target = target_from_nbits(bits)
    prefix = struct.pack("<i", gbt["version"]) + (devnet.tip.hash if prevhash is None else prevhash) + root + (
        struct.pack("<II", gbt["curtime"] if ntime is None else ntime, bits))
    for nonce in range(1_000_000):
        header = prefix + struct.pack("<I", nonce)
        meets = int.from_bytes(sha256d(header), "little") <= target
        if meets != above_target:
            return header + varint(1 + len(txs)) + coinbase + b"".join(txs)
    raise AssertionError("could not grind the header")
