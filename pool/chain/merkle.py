"""Merkle trees over internal-order hashes: the root, the Stratum branch of leaf 0, the witness commitment."""

from __future__ import annotations

from collections.abc import Sequence

from pool.bitcoin.encoding import sha256d

WITNESS_COMMITMENT_HEADER = bytes.fromhex("aa21a9ed")
WITNESS_RESERVED_VALUE = bytes(32)

__all__ = [
    "WITNESS_COMMITMENT_HEADER",
    "WITNESS_RESERVED_VALUE",
    "fold_branch",
    "merkle_branch",
    "merkle_root",
    "witness_commitment",
    "witness_commitment_script",
]


def _next_level(level: list[bytes]) -> list[bytes]:
    if len(level) % 2:
        level = [*level, level[-1]]
    return [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of a tree whose odd levels duplicate their last element; a single leaf is its own root."""
    if not leaves:
        raise ValueError("a merkle tree needs at least one leaf")
    level = list(leaves)
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_branch(template_txids: Sequence[bytes]) -> list[bytes]:
    """Siblings on the path of leaf 0 (the coinbase, not yet known) given the other leaves in order.

    The coinbase's own hash never enters a sibling, so a placeholder stands in for it.
    """
    branch: list[bytes] = []
    level: list[bytes] = [b"", *template_txids]
    while len(level) > 1:
        branch.append(level[1])
        if len(level) % 2:
            level = [*level, level[-1]]
        # Pairs other than the first do not involve the coinbase; the first pair's hash is unknown.
        level = [b""] + [sha256d(level[i] + level[i + 1]) for i in range(2, len(level), 2)]
    return branch


def fold_branch(coinbase_txid: bytes, branch: Sequence[bytes]) -> bytes:
    """What the miner computes: the merkle root from the coinbase txid and the branch."""
    node = coinbase_txid
    for sibling in branch:
        node = sha256d(node + sibling)
    return node


def witness_commitment(template_wtxids: Sequence[bytes], reserved: bytes = WITNESS_RESERVED_VALUE) -> bytes:
    """sha256d(witness root || reserved value), the coinbase's wtxid counted as 32 zero bytes (BIP141)."""
    root = merkle_root([bytes(32), *template_wtxids])
    return sha256d(root + reserved)


def witness_commitment_script(commitment: bytes) -> bytes:
    return b"\x6a\x24" + WITNESS_COMMITMENT_HEADER + commitment
